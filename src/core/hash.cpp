#include "core/hash.hpp"

#include <blake3.h>

#include <cstring>

namespace sq {

Hasher::Hasher() { blake3_hasher_init(&state_); }

Hasher Hasher::derived(const char* context) {
  Hasher h;
  blake3_hasher_init_derive_key(&h.state_, context);
  uint8_t key[BLAKE3_KEY_LEN];
  blake3_hasher_finalize(&h.state_, key, sizeof key);
  blake3_hasher_init_keyed(&h.state_, key);
  return h;
}

void Hasher::update(const void* data, std::size_t len) { blake3_hasher_update(&state_, data, len); }

Digest Hasher::finalize() const {
  Digest d{};
  blake3_hasher_finalize(&state_, d.data(), d.size());
  return d;
}

Digest blake3(std::string_view data) {
  Hasher h;
  h.update(data);
  return h.finalize();
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char k[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = k[bytes[i] >> 4];
    out[2 * i + 1] = k[bytes[i] & 15];
  }
  return out;
}

std::string to_hex(const Digest& d) { return to_hex(std::span<const std::uint8_t>(d.data(), d.size())); }

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<Digest> digest_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Digest d{};
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return d;
}

std::optional<Digest> digest_from_blob(const void* data, std::size_t len) {
  if (len != 32 || data == nullptr) return std::nullopt;
  Digest d{};
  std::memcpy(d.data(), data, 32);
  return d;
}

}  // namespace sq
