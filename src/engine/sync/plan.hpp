#pragma once
// What a mirror push must do, computed from records only (the index and
// the ledger), never by walking the destination.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "store/db.hpp"

namespace sq::engine::sync {

struct PlannedWrite {
  std::string path;  // volume-relative
  std::int64_t content_id = 0;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
  std::optional<std::int64_t> replaces_row;  // live ledger row with other content at this path
  std::int64_t replaced_size = 0, replaced_mtime_ns = 0;
};

struct Plan {
  std::vector<PlannedWrite> writes;
  std::int64_t bytes = 0;
  std::int64_t already_live = 0;  // present paths whose current content is recorded live
};

// Every present path outside reserved subtrees whose current content is
// not recorded live (or committing) at the destination.
Plan plan_mirror(store::Db& db, std::int64_t volume_id, const std::string& destination);

// One line of a manifest segment / receipt.
struct SegmentLine {
  std::string path;
  Digest hash{};
  std::string status;
  std::int64_t size = 0, mtime_ns = 0;
};
// Rows whose status changed after `since_run` (reserved subtrees excluded),
// ordered by (path, status).
std::vector<SegmentLine> path_delta_since(store::Db& db, std::int64_t volume_id, std::int64_t since_run);
// JSONL in the reference's field order and escaping (go_json): path, blake3, status, size_bytes,
// mtime_ns; then, only for a name `path` cannot spell exactly (not UTF-8,
// or holding U+FFFD), path_b64: the name's bytes in standard base64.
std::string render_segment(const std::vector<SegmentLine>& lines);
bool needs_exact_name(const std::string& path);
inline constexpr const char* kExactPathField = "path_b64";

}  // namespace sq::engine::sync
