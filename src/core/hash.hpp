#pragma once
// BLAKE3-256 digests, computed by the official C implementation.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <blake3.h>

namespace sq {

using Digest = std::array<std::uint8_t, 32>;

std::string to_hex(const Digest& d);
std::string to_hex(std::span<const std::uint8_t> bytes);
std::optional<Digest> digest_from_hex(std::string_view hex);
std::optional<Digest> digest_from_blob(const void* data, std::size_t len);

class Hasher {
 public:
  Hasher();
  // A keyed hasher whose key is derived from a context string, so its
  // digests can never collide with plain content digests.
  static Hasher derived(const char* context);
  void update(const void* data, std::size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finalize() const;

 private:
  blake3_hasher state_;
};

Digest blake3(std::string_view data);

}  // namespace sq
