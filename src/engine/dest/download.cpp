#include <memory>

#include "engine/dest/transport.hpp"

namespace sq::dest {

ReadBack download_blake3(Transport& t, const std::string& name) {
  constexpr std::size_t kChunk = 1 << 20;
  auto r = t.get(name);
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Hasher h;
  ReadBack rb;
  while (std::size_t n = r->read(buf.get(), kChunk)) {
    h.update(buf.get(), n);
    rb.bytes += static_cast<std::int64_t>(n);
  }
  rb.hash = h.finalize();
  rb.checksum = to_hex(rb.hash);
  return rb;
}

ReadBack read_back_blake3(Transport& t, const std::string& name) {
  auto rb = t.read_back(name);
  return rb.algo == "blake3" ? rb : download_blake3(t, name);
}

}  // namespace sq::dest
