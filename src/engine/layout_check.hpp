#pragma once
// The run-time half of "layouts that eat themselves": loading refused the
// relations on the configured paths; every command that reads or writes a
// volume's or a destination's bytes asks again on real paths, before it
// writes anything, because a symlink or a bind mount can make two unrelated
// config strings one place.
#include <string>

#include "config/config.hpp"

namespace sq::engine {

// Throws Error(refused) with one line naming both places when, on disk,
// volume `volume` contains or lies inside another volume or the root of a
// local destination. Called by resolve_volume, so index, sync, offload,
// restore and audit all run it.
void require_volume_layout(const config::Config& cfg, const std::string& volume);

// The same for one destination against every volume (sync and verify).
void require_destination_layout(const config::Config& cfg, const std::string& destination);

}  // namespace sq::engine
