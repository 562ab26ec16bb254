#include "engine/sync/packed/member_hasher.hpp"

#include <algorithm>

namespace sq::engine::sync::packed {

namespace {
constexpr std::size_t kChunks = 4;
constexpr std::size_t kChunkBytes = 1 << 20;
// Less room than this (and than asked for) starts a new chunk, so a read
// is never cut into slivers.
constexpr std::size_t kMinPiece = 64 << 10;
}  // namespace

MemberHasher::MemberHasher(std::vector<Digest> expected) : expected_(std::move(expected)), chunks_(kChunks) {
  for (auto& c : chunks_) c.bytes.resize(kChunkBytes);
  for (std::size_t i = 1; i < kChunks; ++i) free_.push_back(i);
  thread_ = std::thread([this] { run(); });
}

MemberHasher::~MemberHasher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::span<char> MemberHasher::space(std::size_t want) {
  Chunk* c = &chunks_[current_];
  std::size_t room = c->bytes.size() - c->used;
  if (room == 0 || (room < want && room < kMinPiece)) {
    hand_over();
    c = &chunks_[current_];
    room = c->bytes.size();
  }
  return {c->bytes.data() + c->used, std::min(room, want)};
}

void MemberHasher::filled(std::size_t member, std::size_t n, bool last) {
  auto& c = chunks_[current_];
  c.pieces.push_back({member, c.used, n, last});
  c.used += n;
}

void MemberHasher::hand_over() {
  std::unique_lock lock(mu_);
  full_.push_back(current_);
  cv_.notify_all();
  cv_.wait(lock, [&] { return !free_.empty(); });
  current_ = free_.front();
  free_.pop_front();
  chunks_[current_].used = 0;
  chunks_[current_].pieces.clear();
}

std::optional<std::size_t> MemberHasher::finish() {
  if (!chunks_[current_].pieces.empty()) hand_over();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return full_.empty() && !busy_; });
  return mismatch_;
}

void MemberHasher::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !full_.empty(); });
    if (stop_) return;
    std::size_t i = full_.front();
    full_.pop_front();
    busy_ = true;
    lock.unlock();
    hash(chunks_[i]);
    lock.lock();
    busy_ = false;
    free_.push_back(i);
    cv_.notify_all();
  }
}

void MemberHasher::hash(const Chunk& c) {
  for (const auto& p : c.pieces) {
    member_.update(c.bytes.data() + p.offset, p.length);
    if (!p.last) continue;
    if (!mismatch_ && member_.finalize() != expected_[p.member]) mismatch_ = p.member;
    member_ = Hasher();
  }
}

}  // namespace sq::engine::sync::packed
