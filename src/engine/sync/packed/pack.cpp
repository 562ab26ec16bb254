#include "engine/sync/packed/pack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "core/text.hpp"
#include "engine/sync/packed/member_hasher.hpp"

namespace sq::engine::sync::packed {

int zstd_level_of(int config_level) {
  static constexpr int kLevels[] = {1, 3, 7, 11};
  return kLevels[std::clamp(config_level, 1, 4) - 1];
}

namespace {

constexpr std::size_t kFeed = 256 << 10;

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
    // One worker compresses while the caller reads and tars. zstd's
    // streaming output with workers does not depend on how many there are,
    // but may differ from its single-threaded output: the count stays fixed.
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, 1)))
      throw Error(ErrorKind::io, "this libzstd cannot compress on a worker thread (built without multithreading), "
                                 "so its packs could differ from other machines' — install Debian's libzstd1");
  }
  // The tar arrives a header or a read at a time; zstd gets it in larger
  // pieces (each call to a zstd stream with a worker takes a lock).
  void append(const char* data, std::size_t len) {
    if (pending_.size() + len > kFeed) flush_pending(ZSTD_e_continue);
    if (len >= kFeed) feed(data, len, ZSTD_e_continue);
    else pending_.insert(pending_.end(), data, data + len);
    tar_bytes_ += static_cast<std::int64_t>(len);
  }
  void end() { flush_pending(ZSTD_e_end); }
  std::int64_t tar_bytes() const { return tar_bytes_; }
  std::int64_t size() const { return size_; }
  Digest key() const { return hasher_.finalize(); }

 private:
  static std::size_t check(std::size_t r) {
    if (ZSTD_isError(r)) throw Error(ErrorKind::io, fmt::format("zstd: {}", ZSTD_getErrorName(r)));
    return r;
  }
  void flush_pending(ZSTD_EndDirective mode) {
    feed(pending_.data(), pending_.size(), mode);
    pending_.clear();
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
  }
  void emit(std::size_t n) {
    if (n == 0) return;
    hasher_.update(out_.data(), n);
    size_ += static_cast<std::int64_t>(n);
    write_(out_.data(), n);
  }
  std::unique_ptr<ZSTD_CCtx, std::size_t (*)(ZSTD_CCtx*)> cctx_;
  const std::function<void(const char*, std::size_t)>& write_;
  std::vector<char> out_, pending_;
  Hasher hasher_;
  std::int64_t tar_bytes_ = 0, size_ = 0;
};

la_ssize_t to_compressor(struct archive*, void* ctx, const void* buf, size_t len) {
  try {
    static_cast<Compressor*>(ctx)->append(static_cast<const char*>(buf), len);
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

using EntryPtr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

void write_header(struct archive* a, archive_entry* e, const PackInput& in) {
  archive_entry_clear(e);
  auto name = to_hex(in.hash);
  archive_entry_copy_pathname(e, name.c_str());
  archive_entry_set_size(e, in.size);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0444);
  archive_entry_set_mtime(e, 0, 0);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  check(a, archive_write_header(a, e), "header");
}

DriftError drift_of(const PackInput& in) {
  return DriftError(in.hash, fmt::format("content {} changed while it was packed", to_hex(in.hash)));
}

// Streams member `i` into the tar; its bytes are hashed by `hasher`. Its
// size must be the content's: one byte more is asked for to see growth.
void write_member(struct archive* a, const PackInput& in, std::size_t i, MemberHasher& hasher) {
  auto read = in.open();
  std::int64_t total = 0;
  for (;;) {
    auto room = hasher.space(static_cast<std::size_t>(in.size - total) + 1);
    std::size_t n = read(room.data(), room.size());
    if (n == 0) break;
    total += static_cast<std::int64_t>(n);
    if (total > in.size) throw drift_of(in);  // grew: the tar entry cannot hold it
    if (archive_write_data(a, room.data(), n) != static_cast<la_ssize_t>(n)) check(a, ARCHIVE_FATAL, "member data");
    hasher.filled(i, n, false);
  }
  hasher.filled(i, 0, true);
  if (total != in.size) throw drift_of(in);
}

}  // namespace

BuiltPack build_pack(std::vector<PackInput> inputs, int zstd_level,
                     const std::function<void(const char* data, std::size_t len)>& write) {
  std::sort(inputs.begin(), inputs.end(), [](const PackInput& a, const PackInput& b) { return a.hash < b.hash; });
  std::vector<Digest> expected;
  for (const auto& in : inputs) expected.push_back(in.hash);
  MemberHasher hasher(std::move(expected));
  Compressor z(zstd_level, write);
  BuiltPack out;
  {
    auto a = open_tar(z);
    EntryPtr e(archive_entry_new(), &archive_entry_free);
    if (!e) throw Error(ErrorKind::io, "cannot start a tar entry");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      write_header(a.get(), e.get(), inputs[i]);
      out.members.push_back({inputs[i].hash, z.tar_bytes(), inputs[i].size});
      write_member(a.get(), inputs[i], i, hasher);
    }
    check(a.get(), archive_write_close(a.get()), "close");
  }
  if (auto bad = hasher.finish()) throw drift_of(inputs[*bad]);
  z.end();
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
