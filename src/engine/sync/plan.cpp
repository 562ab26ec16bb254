#include "engine/sync/plan.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "store/evidence.hpp"

namespace sq::engine::sync {

namespace {

std::string str(const store::Blob& b) { return std::string(b.begin(), b.end()); }

std::string join(const std::string& folder, const std::string& name) {
  return folder.empty() ? name : folder + "/" + name;
}

Digest digest(const store::Blob& b) {
  Digest d{};
  std::copy(b.begin(), b.begin() + std::min<std::size_t>(32, b.size()), d.begin());
  return d;
}

}  // namespace

Plan plan_mirror(store::Db& db, std::int64_t volume_id, const std::string& destination) {
  std::string sql = fmt::format(
      // The content is looked up only for paths that need a write: an
      // unchanged re-sync then reads the files and the live ledger alone.
      "SELECT d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, p.id, p.content_id, p.size_bytes, "
      "p.mtime_ns FROM files f "
      "JOIN folders d ON d.id = f.folder_id LEFT JOIN remote_paths p ON "
      "p.destination = ?2 AND p.folder_id = f.folder_id AND p.name = f.name AND p.state IN ('committing','live') "
      "LEFT JOIN contents c ON c.id = CASE WHEN p.content_id = f.content_id THEN NULL ELSE f.content_id END "
      "WHERE d.volume_id = ?1 AND f.status = 'present' AND {} ORDER BY d.path, f.name",
      store::kOutsideReserved);
  store::Stmt st(db, sql);
  st.bind(1, volume_id).bind(2, destination);
  Plan plan;
  while (st.step()) {
    auto recorded = st.opt_i64(7);
    if (recorded && *recorded == st.i64(2)) {
      plan.already_live += 1;
      continue;
    }
    PlannedWrite w{join(str(st.blob(0)), str(st.blob(1))), st.i64(2), digest(st.blob(3)), st.i64(4), st.i64(5),
                   st.opt_i64(6), st.opt_i64(8).value_or(0), st.opt_i64(9).value_or(0)};
    plan.bytes += w.size;
    plan.writes.push_back(std::move(w));
  }
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
    out.push_back({join(str(st.blob(0)), str(st.blob(1))), digest(st.blob(2)), st.text(3), st.i64(4), st.i64(5)});
  std::sort(out.begin(), out.end(), [](const SegmentLine& a, const SegmentLine& b) {
    return a.path != b.path ? a.path < b.path : a.status < b.status;
  });
  return out;
}

std::string render_segment(const std::vector<SegmentLine>& lines) {
  std::string out;
  for (const auto& l : lines) {
    nlohmann::ordered_json j;
    j["path"] = l.path;
    j["blake3"] = to_hex(l.hash);
    j["status"] = l.status;
    j["size_bytes"] = l.size;
    j["mtime_ns"] = l.mtime_ns;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  return out;
}

}  // namespace sq::engine::sync
