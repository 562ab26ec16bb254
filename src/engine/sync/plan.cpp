#include "engine/sync/plan.hpp"

#include <fmt/format.h>
#include <iterator>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "core/error.hpp"
#include "core/text.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine::sync {

namespace {

// The live (or committing) ledger rows of the volume at the destination,
// walked in (folder, name) order alongside the files: a merge of two
// ordered scans instead of one index probe per file.
class LiveRows {
 public:
  LiveRows(store::Db& db, std::int64_t volume_id, const std::string& destination)
      : st_(db,
            "SELECT folder_id, name, id, content_id, size_bytes, mtime_ns FROM remote_paths WHERE destination = ?2 "
            "AND state IN ('committing','live') AND folder_id IN (SELECT id FROM folders WHERE volume_id = ?1) "
            "ORDER BY folder_id, name") {
    st_.bind(1, volume_id).bind(2, destination);
    more_ = st_.step();
  }
  // The row recorded at (folder, name), skipping the rows before it.
  const store::Stmt* at(std::int64_t folder, std::string_view name) {
    for (; more_; more_ = st_.step()) {
      std::int64_t f = st_.i64(0);
      int order = f != folder ? (f < folder ? -1 : 1) : st_.bytes(1).compare(name);
      if (order == 0) return &st_;
      if (order > 0) return nullptr;
    }
    return nullptr;
  }

 private:
  store::Stmt st_;
  bool more_ = false;
};

std::unordered_map<std::int64_t, std::string> folder_paths(store::Db& db, std::int64_t volume_id) {
  std::unordered_map<std::int64_t, std::string> out;
  store::Stmt st(db, "SELECT id, path FROM folders WHERE volume_id = ?");
  st.bind(1, volume_id);
  while (st.step()) out.emplace(st.i64(0), std::string(st.bytes(1)));
  return out;
}

struct Keyed {
  std::string folder, name;
  PlannedWrite write;
};

PlannedWrite planned_write(store::Stmt& content, const Keyed& k, std::int64_t content_id, std::int64_t mtime,
                           const store::Stmt* live) {
  content.reset();
  content.bind(1, content_id);
  if (!content.step()) throw Error(ErrorKind::internal, "a file row names content the index does not hold");
  return {store::join_path(k.folder, k.name), content_id, content.digest(0), content.i64(1), mtime,
          live ? std::optional(live->i64(2)) : std::nullopt, live ? live->i64(4) : 0, live ? live->i64(5) : 0};
}

}  // namespace

Plan plan_mirror(store::Db& db, std::int64_t volume_id, const std::string& destination) {
  auto folders = folder_paths(db, volume_id);
  LiveRows live(db, volume_id, destination);
  store::Stmt content(db, "SELECT blake3, size_bytes FROM contents WHERE id = ?");
  store::Stmt st(db, "SELECT folder_id, name, content_id, mtime_ns FROM files WHERE status = 'present' AND folder_id IN "
                     "(SELECT id FROM folders WHERE volume_id = ?) ORDER BY folder_id, name");
  st.bind(1, volume_id);
  Plan plan;
  std::vector<Keyed> writes;
  while (st.step()) {
    const std::string& folder = folders.at(st.i64(0));
    if (!store::outside_reserved(folder, st.bytes(1))) continue;
    const store::Stmt* row = live.at(st.i64(0), st.bytes(1));
    if (row && row->i64(3) == st.i64(2)) {
      plan.already_live += 1;
      continue;
    }
    Keyed k{folder, std::string(st.bytes(1)), {}};
    k.write = planned_write(content, k, st.i64(2), st.i64(3), row);
    plan.bytes += k.write.size;
    writes.push_back(std::move(k));
  }
  std::sort(writes.begin(), writes.end(),
            [](const Keyed& a, const Keyed& b) { return std::tie(a.folder, a.name) < std::tie(b.folder, b.name); });
  for (auto& k : writes) plan.writes.push_back(std::move(k.write));
  return plan;
}

std::vector<SegmentLine> path_delta_since(store::Db& db, std::int64_t volume_id, std::int64_t since_run) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, c.blake3, f.status, c.size_bytes, f.mtime_ns FROM files f JOIN folders d ON d.id = "
      "f.folder_id JOIN contents c ON c.id = f.content_id WHERE d.volume_id = ?1 AND "
      "COALESCE(f.status_changed_run_id, f.first_seen_run_id) > ?2 AND {}",
      store::kOutsideReserved);
  store::Stmt st(db, sql);
  st.bind(1, volume_id).bind(2, since_run);
  std::vector<SegmentLine> out;
  while (st.step())
    out.push_back({store::join_path(st.bytes_str(0), st.bytes_str(1)), st.digest(2), st.text(3), st.i64(4), st.i64(5)});
  std::sort(out.begin(), out.end(), [](const SegmentLine& a, const SegmentLine& b) {
    return a.path != b.path ? a.path < b.path : a.status < b.status;
  });
  return out;
}

// JSON text is UTF-8, so `path` cannot hold bytes that are not: the
// reference writes the escape \ufffd for each, and a real U+FFFD then reads
// the same once parsed.
// Such a name gets its exact bytes in `path_b64` beside it.
bool needs_exact_name(const std::string& path) {
  return !is_valid_utf8(path) || path.find(kReplacementCharacter) != std::string::npos;
}

std::string render_segment(const std::vector<SegmentLine>& lines) {
  // Written field by field (a JSON object per line cost a third of a
  // 100k-file push's sealing); the bytes are what encoding/json writes.
  std::string out;
  out.reserve(lines.size() * 192);
  for (const auto& l : lines) {
    out += "{\"path\":";
    out += go_json_string(l.path);
    fmt::format_to(std::back_inserter(out), ",\"blake3\":\"{}\",\"status\":{},\"size_bytes\":{},\"mtime_ns\":{}",
                   to_hex(l.hash), go_json_string(l.status), l.size, l.mtime_ns);
    if (needs_exact_name(l.path)) fmt::format_to(std::back_inserter(out), ",\"{}\":\"{}\"", kExactPathField,
                                                 base64_encode(l.path));
    out += "}\n";
  }
  return out;
}

}  // namespace sq::engine::sync
