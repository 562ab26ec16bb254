#include "core/digest.hpp"

#include <openssl/evp.h>

#include <optional>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace sq {

namespace {

const EVP_MD* openssl_md(std::string_view algo) {
  if (algo == "md5") return EVP_md5();
  if (algo == "sha1") return EVP_sha1();
  if (algo == "sha256") return EVP_sha256();
  return nullptr;
}

}  // namespace

bool is_supported_digest(std::string_view algo) { return algo == "blake3" || openssl_md(algo) != nullptr; }

std::size_t digest_hex_length(std::string_view algo) {
  if (algo == "blake3") return 64;
  if (const EVP_MD* md = openssl_md(algo)) return 2 * static_cast<std::size_t>(EVP_MD_get_size(md));
  return 0;
}

struct MultiHasher::State {
  std::optional<Hasher> blake3;
  EVP_MD_CTX* ctx = nullptr;
  ~State() { EVP_MD_CTX_free(ctx); }
};

MultiHasher::MultiHasher(std::string_view algo) : s_(std::make_unique<State>()) {
  if (algo == "blake3") {
    s_->blake3.emplace();
    return;
  }
  const EVP_MD* md = openssl_md(algo);
  if (!md) throw Error(ErrorKind::usage, "unsupported hash algorithm " + std::string(algo));
  s_->ctx = EVP_MD_CTX_new();
  if (!s_->ctx || EVP_DigestInit_ex(s_->ctx, md, nullptr) != 1) throw Error(ErrorKind::io, "cannot start a digest");
}

MultiHasher::~MultiHasher() = default;

void MultiHasher::update(const void* data, std::size_t len) {
  if (s_->blake3) return s_->blake3->update(data, len);
  EVP_DigestUpdate(s_->ctx, data, len);
}

std::string MultiHasher::hex() {
  if (s_->blake3) return to_hex(s_->blake3->finalize());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(s_->ctx, out, &n);
  return to_hex(std::span<const std::uint8_t>(out, n));
}

std::string digest_hex(std::string_view algo, std::string_view data) {
  MultiHasher h(algo);
  h.update(data.data(), data.size());
  return h.hex();
}

}  // namespace sq
