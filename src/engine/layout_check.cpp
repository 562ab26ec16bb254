#include "engine/layout_check.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace sq::engine {

namespace {

void require_clear_of(const config::Config& cfg, const std::string& name) {
  for (const auto& c : config::real_layout_clashes(cfg))
    if (c.first == name || c.second == name)
      throw Error(ErrorKind::refused, fmt::format("{} — {}; nothing was changed", c.problem, c.todo));
}

}  // namespace

void require_volume_layout(const config::Config& cfg, const std::string& volume) { require_clear_of(cfg, volume); }

void require_destination_layout(const config::Config& cfg, const std::string& destination) {
  require_clear_of(cfg, destination);
}

}  // namespace sq::engine
