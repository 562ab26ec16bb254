#pragma once
// Reading one member out of a pack: the pack is streamed from the
// destination and decompressed, the bytes before the member are dropped,
// and exactly the member's length is returned. The caller hashes what it
// reads against the content (a pack is never trusted for its name alone).
#include <cstdint>
#include <memory>
#include <string>

#include "engine/dest/transport.hpp"

namespace sq::engine::sync::packed {

std::unique_ptr<dest::Reader> open_member(dest::Transport& t, const std::string& pack, std::int64_t offset,
                                          std::int64_t length);

}  // namespace sq::engine::sync::packed
