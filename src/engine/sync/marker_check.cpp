// The one reading of a volume's marker at a destination, for every command
// that relies on copies being there (verify, offload, restore): an
// unmounted disk or a re-pointed root must never read as "copies gone" or
// be trusted as the source.
#include <fmt/format.h>

#include "core/text.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/volume.hpp"

namespace sq::engine::sync {

std::optional<std::string> marker_problem(dest::Transport& t, const std::string& volume) {
  std::string name = volume + "/" + kMarkerName, text;
  try {
    if (t.stat(name).type != dest::EntryType::file) return fmt::format("no marker at {}", escape_for_display(name));
    auto in = t.get(name);
    char buf[4096];
    while (std::size_t n = in->read(buf, sizeof buf)) {
      text.append(buf, n);
      if (text.size() > 65536) return fmt::format("{} is too large for a marker", escape_for_display(name));
    }
  } catch (const Error& e) {
    return fmt::format("cannot read {}: {}", escape_for_display(name), e.what());
  }
  auto m = parse_marker(text);
  if (!m) return fmt::format("{} is not a valid squirrel marker", escape_for_display(name));
  if (m->volume != volume)
    return fmt::format("{} names volume \"{}\"", escape_for_display(name), escape_for_display(m->volume));
  return std::nullopt;
}

}  // namespace sq::engine::sync
