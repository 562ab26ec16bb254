#include "engine/sync/packed/member_reader.hpp"

#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <vector>

namespace sq::engine::sync::packed {

// One decompressing stream over a pack, `pos` bytes into its tar.
struct Cursor {
  Cursor(std::unique_ptr<dest::Reader> r, std::string n)
      : pack(std::move(r)), name(std::move(n)), dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx),
        in_store(ZSTD_DStreamInSize()), out(ZSTD_DStreamOutSize()) {
    if (!dctx) throw Error(ErrorKind::io, "cannot start a zstd stream");
  }

  // Refills `out`; false when the pack ended.
  bool decompress_more() {
    for (;;) {
      if (in.pos == in.size && !eof) {
        in.src = in_store.data();
        in.size = pack->read(in_store.data(), in_store.size());
        in.pos = 0;
        eof = in.size == 0;
      }
      if (in.pos == in.size && eof) return false;
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      std::size_t r = ZSTD_decompressStream(dctx.get(), &o, &in);
      if (ZSTD_isError(r))
        throw Error(ErrorKind::corrupt, fmt::format("{} is not a readable zstd stream: {}", name, ZSTD_getErrorName(r)));
      out_pos = 0;
      out_end = o.pos;
      if (out_end > 0) return true;
    }
  }

  std::unique_ptr<dest::Reader> pack;
  std::string name;
  std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx;
  std::vector<char> in_store;
  ZSTD_inBuffer in{nullptr, 0, 0};
  std::vector<char> out;
  std::size_t out_pos = 0, out_end = 0;
  std::int64_t pos = 0;  // tar bytes handed out or skipped so far
  bool eof = false;
};

namespace {

// Kept streams at most: a few per reader in flight is plenty.
constexpr std::size_t kKeptCursors = 32;

class MemberReader final : public dest::Reader {
 public:
  MemberReader(std::unique_ptr<Cursor> c, std::int64_t offset, std::int64_t length, MemberCursors* keep)
      : c_(std::move(c)), skip_(offset - c_->pos), left_(length), length_(length), keep_(keep) {}
  ~MemberReader() override {
    if (!keep_ || left_ != 0 || !c_) return;
    std::string name = c_->name;  // before the cursor is handed over
    keep_->keep(name, std::move(c_));
  }

  std::size_t read(char* buf, std::size_t len) override {
    std::size_t given = 0;
    while (given < len && left_ > 0) {
      if (c_->out_pos == c_->out_end && !c_->decompress_more())
        throw Error(ErrorKind::corrupt, fmt::format("{} ends before the member it should hold", c_->name));
      auto avail = static_cast<std::int64_t>(c_->out_end - c_->out_pos);
      auto n = skip_ > 0 ? std::min(skip_, avail) : std::min({avail, left_, static_cast<std::int64_t>(len - given)});
      if (skip_ > 0) {
        skip_ -= n;
      } else {
        std::copy_n(c_->out.data() + c_->out_pos, n, buf + given);
        given += static_cast<std::size_t>(n);
        left_ -= n;
      }
      c_->out_pos += static_cast<std::size_t>(n);
      c_->pos += n;
    }
    return given;
  }

  dest::Stat stat() override { return {dest::EntryType::file, length_, 0}; }

 private:
  std::unique_ptr<Cursor> c_;
  std::int64_t skip_, left_, length_;
  MemberCursors* keep_;
};

}  // namespace

MemberCursors::MemberCursors() = default;
MemberCursors::~MemberCursors() = default;

std::unique_ptr<Cursor> MemberCursors::take(const std::string& pack, std::int64_t offset) {
  std::lock_guard lock(mu_);
  auto [from, to] = idle_.equal_range(pack);
  auto best = to;
  for (auto it = from; it != to; ++it)
    if (it->second->pos <= offset && (best == to || it->second->pos > best->second->pos)) best = it;
  if (best == to) return nullptr;
  auto c = std::move(best->second);
  idle_.erase(best);
  return c;
}

void MemberCursors::keep(const std::string& pack, std::unique_ptr<Cursor> c) {
  std::lock_guard lock(mu_);
  if (idle_.size() >= kKeptCursors) idle_.erase(idle_.begin());
  idle_.emplace(pack, std::move(c));
}

std::unique_ptr<dest::Reader> open_member(dest::Transport& t, const std::string& pack, std::int64_t offset,
                                          std::int64_t length, MemberCursors* cursors) {
  std::unique_ptr<Cursor> c = cursors ? cursors->take(pack, offset) : nullptr;
  if (!c) c = std::make_unique<Cursor>(t.get(pack), pack);
  return std::make_unique<MemberReader>(std::move(c), offset, length, cursors);
}

}  // namespace sq::engine::sync::packed
