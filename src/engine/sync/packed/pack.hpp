#pragma once
// A pack of the packed layout (spec sync-offload-restore.md §3.4): small
// contents bundled into one normalised tar, compressed as one zstd stream,
// named by the BLAKE3 of the compressed bytes. Deterministic: the same
// contents and level give byte-identical packs on any machine with the same
// libarchive and libzstd, so a pack lost between landing and recording is
// rebuilt under the same key.
//
//  property                  | how
//  --------------------------+----------------------------------------------
//  member order              | ascending content hash
//  member header             | ustar/restricted PAX: name = 64-hex hash,
//                            | mode 0444, mtime 0, uid/gid 0, no user names
//  compression               | one zstd stream, one worker, checksummed
//  key                       | BLAKE3 of the compressed bytes
//  a member changed on the   | the build fails (size or BLAKE3 differ from
//  way in                    | the content), nothing is returned
//  offset / length           | of the member's bytes in the uncompressed tar
//
// Recovery with stock tools: `zstd -d < packs/<key> | tar -xO <hash>`.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace sq::engine::sync::packed {

struct PackInput {
  Digest hash{};
  std::int64_t size = 0;
  // Fills buf with up to len bytes of the content; 0 at its end.
  std::function<std::function<std::size_t(char* buf, std::size_t len)>()> open;
};

struct PackMember {
  Digest hash{};
  std::int64_t offset = 0, length = 0;
};

struct BuiltPack {
  Digest key{};
  std::int64_t size = 0;  // compressed bytes
  std::vector<PackMember> members;
};

// A member whose bytes are not the content's.
class DriftError : public Error {
 public:
  DriftError(const Digest& hash, const std::string& what) : Error(ErrorKind::io, what), hash_(hash) {}
  const Digest& content() const { return hash_; }

 private:
  Digest hash_;
};

// The zstd level of the config's zstd_level 1..4 (fastest, default,
// better, best: the reference's encoder speeds).
int zstd_level_of(int config_level);

// Writes the pack of `inputs` (any order; packed in hash order) through
// `write` (called with the compressed bytes, in order). Throws DriftError
// for a member that is not its content, Error for anything else.
BuiltPack build_pack(std::vector<PackInput> inputs, int zstd_level,
                     const std::function<void(const char* data, std::size_t len)>& write);

// The placement map's JSON lines (blake3, pack, offset, length), in the
// given order.
struct MapLine {
  Digest content{}, pack{};
  std::int64_t offset = 0, length = 0;
};
std::string render_map(const std::vector<MapLine>& lines);

}  // namespace sq::engine::sync::packed
