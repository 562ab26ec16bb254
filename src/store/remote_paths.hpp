#pragma once
// The native mirror ledger: which content squirrel wrote at which path of a
// destination, and where it moved it. Every move is recorded before it is
// made (committing, displacing) and settled after the flush that covers it
// (live, displaced), so a crashed push can be finished or withdrawn.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "store/db.hpp"

namespace sq::store {

struct LedgerRow {
  std::int64_t id = 0;
  std::string path;  // volume-relative
  std::int64_t folder_id = 0;
  std::string name;
  std::int64_t content_id = 0;
  Digest hash{};
  std::int64_t written_run = 0;
  std::string state;
  std::optional<std::int64_t> displaced_run;
  std::int64_t size = 0, mtime_ns = 0;
  std::optional<std::string> checksum;
  std::optional<std::int64_t> verified_at_ns;
  std::optional<std::string> checksum_algo;
};

// Rows of a volume at a destination, optionally only in the given states.
std::vector<LedgerRow> ledger_rows(Db& db, const std::string& destination, std::int64_t volume_id,
                                   const std::vector<std::string>& states = {});
bool has_ledger_rows(Db& db, const std::string& destination, std::int64_t volume_id);

struct CommitIntent {
  std::string path;
  std::int64_t content_id = 0;
  std::int64_t size = 0, mtime_ns = 0;
  std::optional<std::string> checksum;  // lowercase hex read back (or hashed by the server)
  std::optional<std::int64_t> verified_at_ns;
  std::string checksum_algo = "blake3";  // of checksum
};
// Inserts `committing` rows; returns their ids in order. All or nothing.
std::vector<std::int64_t> begin_commits(Db& db, const std::string& destination, std::int64_t volume_id,
                                        std::int64_t run_id, const std::vector<CommitIntent>& intents);

// State transitions; every id must be in the source state or nothing changes.
void transition(Db& db, const std::vector<std::int64_t>& ids, const std::string& from, const std::string& to,
                std::optional<std::int64_t> displaced_run = std::nullopt);
// Marks rows lost from whatever non-lost state they are in.
void mark_lost(Db& db, const std::vector<std::int64_t>& ids);
// A copy of one version of a path at a destination: the live copy, or one
// an overwrite moved to .squirrel-history/run-<displaced_run>/.
struct VersionCopy {
  std::string destination;
  bool live = false;
  std::int64_t displaced_run = 0;  // when not live
};
// Every recorded copy of `content_id` at `path` of the volume, by destination.
std::vector<VersionCopy> copies_of_version(Db& db, std::int64_t volume_id, const std::string& path,
                                           std::int64_t content_id);

// Present files of the volume whose copy at `destination` a verify found
// lost and no live copy of the same content has replaced yet.
std::int64_t count_lost_copies(Db& db, std::int64_t volume_id, const std::string& destination);
// Re-stamps a verified read-back on a live or displaced row by the rule
// of store::kStampSet: a read never replaces a recorded checksum. Inside the caller's transaction: a pass
// records many at once.
void record_verified_in_tx(Db& db, std::int64_t id, const std::string& hex, std::int64_t at_ns,
                           const std::string& algo = "blake3");

}  // namespace sq::store
