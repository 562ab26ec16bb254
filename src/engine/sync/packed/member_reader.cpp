#include "engine/sync/packed/member_reader.hpp"

#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <vector>

namespace sq::engine::sync::packed {

namespace {

class MemberReader final : public dest::Reader {
 public:
  MemberReader(std::unique_ptr<dest::Reader> pack, std::string name, std::int64_t offset, std::int64_t length)
      : pack_(std::move(pack)), name_(std::move(name)), dctx_(ZSTD_createDCtx(), &ZSTD_freeDCtx),
        out_(ZSTD_DStreamOutSize()), skip_(offset), left_(length), length_(length) {
    if (!dctx_) throw Error(ErrorKind::io, "cannot start a zstd stream");
  }

  std::size_t read(char* buf, std::size_t len) override {
    std::size_t given = 0;
    while (given < len && left_ > 0) {
      if (out_pos_ == out_end_ && !decompress_more()) break;
      auto avail = static_cast<std::int64_t>(out_end_ - out_pos_);
      if (skip_ > 0) {
        auto drop = std::min(skip_, avail);
        out_pos_ += static_cast<std::size_t>(drop);
        skip_ -= drop;
        continue;
      }
      auto n = static_cast<std::size_t>(std::min({avail, left_, static_cast<std::int64_t>(len - given)}));
      std::copy_n(out_.data() + out_pos_, n, buf + given);
      out_pos_ += n;
      given += n;
      left_ -= static_cast<std::int64_t>(n);
    }
    return given;
  }

  dest::Stat stat() override { return {dest::EntryType::file, length_, 0}; }

 private:
  // Refills the output buffer; false when the pack ended.
  bool decompress_more() {
    for (;;) {
      if (in_.pos == in_.size && !eof_) {
        in_.src = in_store_.data();
        in_.size = pack_->read(in_store_.data(), in_store_.size());
        in_.pos = 0;
        eof_ = in_.size == 0;
      }
      if (in_.pos == in_.size && eof_) {
        if (skip_ > 0 || left_ > 0)
          throw Error(ErrorKind::corrupt, fmt::format("{} ends before the member it should hold", name_));
        return false;
      }
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      std::size_t r = ZSTD_decompressStream(dctx_.get(), &out, &in_);
      if (ZSTD_isError(r))
        throw Error(ErrorKind::corrupt, fmt::format("{} is not a readable zstd stream: {}", name_, ZSTD_getErrorName(r)));
      out_pos_ = 0;
      out_end_ = out.pos;
      if (out_end_ > 0) return true;
    }
  }

  std::unique_ptr<dest::Reader> pack_;
  std::string name_;
  std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx_;
  std::vector<char> in_store_ = std::vector<char>(ZSTD_DStreamInSize());
  ZSTD_inBuffer in_{nullptr, 0, 0};
  std::vector<char> out_;
  std::size_t out_pos_ = 0, out_end_ = 0;
  std::int64_t skip_, left_, length_;
  bool eof_ = false;
};

}  // namespace

std::unique_ptr<dest::Reader> open_member(dest::Transport& t, const std::string& pack, std::int64_t offset,
                                          std::int64_t length) {
  return std::make_unique<MemberReader>(t.get(pack), pack, offset, length);
}

}  // namespace sq::engine::sync::packed
