#pragma once
// Hashing under the algorithms a server's hash command may use (md5sum,
// sha1sum, sha256sum, b3sum), so squirrel can compute the same digest over
// the bytes it sent and compare it with what the server measured. BLAKE3 is
// the official C code; the others come from OpenSSL's libcrypto.
#include <memory>
#include <string>
#include <string_view>

namespace sq {

// True for "md5", "sha1", "sha256" and "blake3".
bool is_supported_digest(std::string_view algo);
// The number of hex digits a digest of `algo` has (0 if unsupported).
std::size_t digest_hex_length(std::string_view algo);

class MultiHasher {
 public:
  explicit MultiHasher(std::string_view algo);  // throws Error(usage) for an unsupported algo
  ~MultiHasher();
  MultiHasher(const MultiHasher&) = delete;
  MultiHasher& operator=(const MultiHasher&) = delete;
  void update(const void* data, std::size_t len);
  std::string hex();  // lowercase; ends the hasher

 private:
  struct State;
  std::unique_ptr<State> s_;
};

std::string digest_hex(std::string_view algo, std::string_view data);

}  // namespace sq
