// Case-folding destinations (vfat, exFAT, some NAS shares) would let two
// source paths that differ only in case land on one name, the second
// silently replacing the first. A probe detects folding before the first
// write; on such a destination, every path that folds onto another present
// path is refused, never staged, and the run fails loudly.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "core/text.hpp"
#include "engine/sync/push.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine::sync {

namespace {

std::string fold(const std::string& s) {
  std::string out = s;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> present_paths(Push& p) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.volume_id = ? AND f.status = "
      "'present' AND {} ORDER BY d.path, f.name",
      store::kOutsideReserved);
  store::Stmt st(p.db(), sql);
  st.bind(1, p.volume_id());
  std::vector<std::string> out;
  while (st.step()) {
    out.push_back(store::join_path(st.bytes_str(0), st.bytes_str(1)));
  }
  return out;
}

}  // namespace

bool destination_folds_case(Push& p) {
  std::string probe = p.in_volume(std::string(kStaging) + "/fold-probe-\xc3\xa9");
  std::string upper = p.in_volume(std::string(kStaging) + "/FOLD-PROBE-\xc3\xa9");
  if (p.t->stat(probe).type != dest::EntryType::none) p.t->remove(probe);
  p.t->put(probe, [](char*, std::size_t) { return std::size_t{0}; }, now_ns());
  bool folds = p.t->stat(upper).type != dest::EntryType::none;
  p.t->remove(probe);
  return folds;
}

void refuse_fold_collisions(Push& p, Plan& plan) {
  std::map<std::string, std::string> first;  // folded -> the spelling that wins (first by byte order)
  for (const auto& path : present_paths(p)) first.emplace(fold(path), path);
  std::vector<PlannedWrite> kept;
  for (auto& w : plan.writes) {
    const auto& winner = first[fold(w.path)];
    if (winner == w.path) {
      kept.push_back(std::move(w));
      continue;
    }
    p.report.failed += 1;
    plan.bytes -= w.size;
    p.file_error(w.path, fmt::format("the destination folds case and this path collides with {}; refused — rename "
                                     "one of them", escape_for_display(winner)));
  }
  plan.writes = std::move(kept);
}

}  // namespace sq::engine::sync
