#include "engine/sync/packed/pack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "core/text.hpp"

namespace sq::engine::sync::packed {

int zstd_level_of(int config_level) {
  static constexpr int kLevels[] = {1, 3, 7, 11};
  return kLevels[std::clamp(config_level, 1, 4) - 1];
}

namespace {

constexpr std::size_t kChunk = 1 << 20;

// The zstd stream the tar is written into: compresses, hashes the
// compressed bytes (the pack key) and hands them on. Counts the tar's
// uncompressed bytes, which locate each member.
class Compressor {
 public:
  Compressor(int level, const std::function<void(const char*, std::size_t)>& write)
      : cctx_(ZSTD_createCCtx(), &ZSTD_freeCCtx), write_(write), out_(ZSTD_CStreamOutSize()) {
    if (!cctx_) throw Error(ErrorKind::io, "cannot start a zstd stream");
    check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level));
    check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1));
    check(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, 0));
  }
  void feed(const char* data, std::size_t len, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, len, 0};
    for (;;) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      std::size_t left = check(ZSTD_compressStream2(cctx_.get(), &out, &in, mode));
      emit(out.pos);
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) break;
    }
    tar_bytes_ += static_cast<std::int64_t>(len);
  }
  std::int64_t tar_bytes() const { return tar_bytes_; }
  std::int64_t size() const { return size_; }
  Digest key() const { return hasher_.finalize(); }

 private:
  static std::size_t check(std::size_t r) {
    if (ZSTD_isError(r)) throw Error(ErrorKind::io, fmt::format("zstd: {}", ZSTD_getErrorName(r)));
    return r;
  }
  void emit(std::size_t n) {
    if (n == 0) return;
    hasher_.update(out_.data(), n);
    size_ += static_cast<std::int64_t>(n);
    write_(out_.data(), n);
  }
  std::unique_ptr<ZSTD_CCtx, std::size_t (*)(ZSTD_CCtx*)> cctx_;
  const std::function<void(const char*, std::size_t)>& write_;
  std::vector<char> out_;
  Hasher hasher_;
  std::int64_t tar_bytes_ = 0, size_ = 0;
};

la_ssize_t to_compressor(struct archive*, void* ctx, const void* buf, size_t len) {
  try {
    static_cast<Compressor*>(ctx)->feed(static_cast<const char*>(buf), len, ZSTD_e_continue);
    return static_cast<la_ssize_t>(len);
  } catch (...) {
    return -1;  // libarchive reports the failed write; the caller throws
  }
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

void check(struct archive* a, int r, const char* what) {
  if (r < ARCHIVE_OK) throw Error(ErrorKind::io, fmt::format("building a pack: {}: {}", what, archive_error_string(a)));
}

ArchivePtr open_tar(Compressor& z) {
  ArchivePtr a(archive_write_new(), &archive_write_free);
  if (!a) throw Error(ErrorKind::io, "cannot start a tar writer");
  check(a.get(), archive_write_set_format_pax_restricted(a.get()), "format");
  check(a.get(), archive_write_add_filter_none(a.get()), "filter");
  // No blocking: every header reaches the compressor at once, so the
  // count of tar bytes locates each member, and no padding follows the end.
  check(a.get(), archive_write_set_bytes_per_block(a.get(), 0), "blocking");
  check(a.get(), archive_write_open2(a.get(), &z, nullptr, &to_compressor, nullptr, nullptr), "open");
  return a;
}

void write_header(struct archive* a, const PackInput& in) {
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), &archive_entry_free);
  auto name = to_hex(in.hash);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_size(e.get(), in.size);
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0444);
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  check(a, archive_write_header(a, e.get()), "header");
}

// Streams one member, hashing it; its bytes must be exactly the content's.
void write_member(struct archive* a, const PackInput& in, std::vector<char>& buf) {
  auto read = in.open();
  Hasher h;
  std::int64_t total = 0;
  while (std::size_t n = read(buf.data(), buf.size())) {
    h.update(buf.data(), n);
    total += static_cast<std::int64_t>(n);
    if (total > in.size) break;  // grew: drift, and the tar entry cannot hold it
    if (archive_write_data(a, buf.data(), n) != static_cast<la_ssize_t>(n))
      check(a, ARCHIVE_FATAL, "member data");
  }
  if (total != in.size || h.finalize() != in.hash)
    throw DriftError(in.hash, fmt::format("content {} changed while it was packed", to_hex(in.hash)));
}

}  // namespace

BuiltPack build_pack(std::vector<PackInput> inputs, int zstd_level,
                     const std::function<void(const char* data, std::size_t len)>& write) {
  std::sort(inputs.begin(), inputs.end(), [](const PackInput& a, const PackInput& b) { return a.hash < b.hash; });
  Compressor z(zstd_level, write);
  BuiltPack out;
  {
    auto a = open_tar(z);
    std::vector<char> buf(kChunk);
    for (const auto& in : inputs) {
      write_header(a.get(), in);
      out.members.push_back({in.hash, z.tar_bytes(), in.size});
      write_member(a.get(), in, buf);
    }
    check(a.get(), archive_write_close(a.get()), "close");
  }
  z.feed(nullptr, 0, ZSTD_e_end);
  out.key = z.key();
  out.size = z.size();
  return out;
}

std::string render_map(const std::vector<MapLine>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += fmt::format("{{\"blake3\":\"{}\",\"pack\":\"{}\",\"offset\":{},\"length\":{}}}\n", to_hex(l.content),
                       to_hex(l.pack), l.offset, l.length);
  return out;
}

}  // namespace sq::engine::sync::packed
