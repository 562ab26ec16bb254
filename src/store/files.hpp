#pragma once
// Path observations of content. Rows are never deleted and never change
// their content: a new content at a path supersedes the live row. Every
// change to the live set recomputes the touched folders' Merkle hashes and
// aggregates in the same transaction.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "store/db.hpp"

namespace sq::store {

inline Value blob_of(std::string_view s) { return Value{Blob(s.begin(), s.end())}; }

// Volume-relative paths use '/' and hold raw bytes (not necessarily UTF-8).
std::pair<std::string, std::string> split_path(const std::string& path);  // folder, name
// The inverse: "" is the volume's root folder.
inline std::string join_path(const std::string& folder, const std::string& name) {
  return folder.empty() ? name : folder + "/" + name;
}

struct Provenance {
  std::optional<std::int64_t> origin_node_id;  // empty: introduced here
  std::optional<std::int64_t> origin_run_id;
};

struct Observation {
  std::string path;
  Digest hash{};
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t inode = 0;
  bool touch_only = false;  // unchanged by size+mtime: only mark seen (shallow)
  // The caller saw no live row at this path during this gated run, which
  // means no row at all exists there; lets the writer skip two lookups.
  bool known_absent = false;
};

enum class Change { added, modified, unchanged };

struct BatchCounts {
  std::int64_t added = 0, modified = 0, unchanged = 0;
};

// Whether the volume has any file rows at all (in any status).
bool volume_has_files(Db& db, std::int64_t volume_id);

// Applies many observations in one transaction (all or nothing).
BatchCounts apply_index_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                              const std::vector<Observation>& entries, const Provenance& prov = {});
// The same inside the caller's open write transaction, which may span
// several calls. No statement is left on a row afterwards, so the commit
// can checkpoint at once.
BatchCounts apply_index_entries(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                const std::vector<Observation>& entries, const Provenance& prov = {});

// Flips present rows not seen by `run_id` to missing (offloaded rows are
// never flipped). Call only after a complete walk without errors.
std::int64_t mark_missing(Db& db, std::int64_t volume_id, std::int64_t run_id);

struct UnseenRow {
  std::string path;
  std::int64_t content_id = 0;
};
// Ends an error-free walk in one transaction: flips exactly the listed rows
// that are still present with that content to missing (recomputing their
// folders), then stamps last_seen_run_id on every other present row of the
// volume — the walk saw them unchanged, so no per-file write was needed.
// A caller that wrote every file it saw passes `stamp_unchanged` false and
// saves that scan of the volume's rows. Returns the number of rows flipped.
std::int64_t settle_walk(Db& db, std::int64_t volume_id, std::int64_t run_id, const std::vector<UnseenRow>& unseen,
                         bool stamp_unchanged = true);

// Ends a walk with errors: nothing is flagged missing, but the present rows
// of every folder listed in full are stamped seen, except the names given
// for it (files that failed or were not found). A folder with too many
// exceptions for one statement is left unstamped rather than over-claimed.
void stamp_listed_folders(Db& db, std::int64_t volume_id, std::int64_t run_id,
                          const std::map<std::string, std::set<std::string>>& listed);

// Flips exactly the present row with that content to offloaded.
void mark_offloaded(Db& db, std::int64_t volume_id, const std::string& path, std::int64_t content_id,
                    std::int64_t run_id);

struct OffloadFlip {
  std::string path;
  std::int64_t content_id = 0;
};
// Flips each listed present row to offloaded in one transaction, with one
// folder recomputation. Returns the paths whose flip did not apply (the row
// was no longer present with that content).
std::vector<std::string> mark_offloaded_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                              const std::vector<OffloadFlip>& flips);

// ---- the offload intent journal ----
// Records, in a commit of its own, that each listed present row is about to
// be unlinked; throws when one is no longer present (nothing is recorded).
void record_offload_intents(Db& db, std::int64_t volume_id, std::int64_t run_id,
                            const std::vector<OffloadFlip>& rows);
// After the unlinks, in one transaction: flips the removed rows to offloaded
// and drops the intents of every intended row. Returns the paths whose flip
// did not apply.
std::vector<std::string> complete_offload_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                                const std::vector<OffloadFlip>& removed,
                                                const std::vector<OffloadFlip>& intended);
struct OffloadIntent {
  OffloadFlip row;
  std::int64_t run_id = 0;  // the offload run that meant to unlink it
};
// Intents a killed offload left behind, oldest run first.
std::vector<OffloadIntent> pending_offload_intents(Db& db, std::int64_t volume_id);
std::int64_t count_offload_intents(Db& db, std::int64_t volume_id);
// Settles intents from what the disk shows, in one transaction: a row whose
// file is gone becomes offloaded (stamped with the run that unlinked it);
// every listed intent is dropped.
void settle_offload_intents(Db& db, std::int64_t volume_id, const std::vector<OffloadIntent>& gone,
                            const std::vector<OffloadIntent>& kept);

// Restore: flips offloaded (or missing) rows with that content back to present.
// Returns the paths that did not flip.
std::vector<std::string> mark_restored_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                             const std::vector<OffloadFlip>& flips);

struct LiveRow {
  std::string name;
  std::int64_t content_id = 0;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0, inode = 0;
  std::string status;
};
// The live rows of one folder, sorted by name (empty if the folder is unknown).
std::vector<LiveRow> live_rows_in_folder(Db& db, std::int64_t volume_id, const std::string& folder);

struct FileRow {
  std::int64_t volume_id = 0;
  std::string volume_name, volume_path, path;
  std::int64_t content_id = 0;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0, indexed_at_ns = 0;
  std::string status;
  std::int64_t first_seen_run = 0, last_seen_run = 0, status_changed_run = 0;
  std::optional<std::string> origin_node;
  std::optional<std::int64_t> origin_run;
};
std::optional<FileRow> live_row_by_path(Db& db, std::int64_t volume_id, const std::string& path);
std::vector<FileRow> history_by_path(Db& db, std::int64_t volume_id, const std::string& path);
std::vector<FileRow> rows_by_hash(Db& db, const Digest& hash);
std::vector<FileRow> rows_with_status(Db& db, std::optional<std::int64_t> volume_id, const std::string& status);
// Present rows whose content is present at more than one path, grouped by hash.
std::vector<FileRow> duplicate_rows(Db& db, std::optional<std::int64_t> volume_id);
std::vector<FileRow> rows_from_origin(Db& db, std::int64_t origin_node_id);
std::int64_t count_live(Db& db, std::int64_t volume_id);

// Recomputes every folder of the volume from its rows and reports folders
// whose stored hashes or aggregates disagree (audit --folders).
std::vector<std::string> folder_divergences(Db& db, std::int64_t volume_id);

}  // namespace sq::store
