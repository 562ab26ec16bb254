#pragma once
// Pieces of offload shared by its translation units.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "engine/offload/gate.hpp"

namespace sq::engine::offload_detail {

struct Candidate {
  GateFile gate;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
};

struct RemoveResult {
  enum class Kind { removed, drift, error } kind = Kind::removed;
  std::string what;
};

// Called right before (false) and right after (true) the unlink.
using UnlinkHook = std::function<void(bool after)>;

// The re-check right before the unlink: the file at the candidate's path is
// a regular file, still the inode that was opened, with the indexed size,
// mtime and BLAKE3 (hashed through the open handle, so the bytes judged are
// the bytes unlinked); then it is unlinked. Nothing else is ever removed.
RemoveResult verify_and_remove(int root, const Candidate& c, std::vector<char>& buf, const UnlinkHook& hook);

}  // namespace sq::engine::offload_detail
