// The run ids a mirror names: a database that does not know the mirror's
// runs continues its own numbering above them.

#include "engine/sync/mirror.hpp"
#include "engine/sync/push.hpp"

namespace sq::engine::sync {

namespace {

// N in "run-N" or "index-<time>-run-N.db".
std::optional<std::int64_t> run_named(std::string_view name) {
  if (name.starts_with("index-") && name.ends_with(".db")) {
    name.remove_suffix(3);
    auto at = name.rfind("-run-");
    if (at == std::string_view::npos) return std::nullopt;
    name.remove_prefix(at + 1);
  }
  return dest::run_id_in(name);
}

}  // namespace

std::int64_t highest_run_named(dest::Transport& t, const std::string& volume, bool content_layout) {
  std::int64_t highest = 0;
  for (const char* sub : {kIndexDir, kHistory, kStaging, content_layout ? kSegmentDir : kIndexDir}) {
    auto dir = volume + "/" + sub;
    if (t.stat(dir).type != dest::EntryType::directory) continue;
    for (const auto& e : t.list(dir))
      if (auto run = run_named(e.name)) highest = std::max(highest, *run);
  }
  return highest;
}

}  // namespace sq::engine::sync
