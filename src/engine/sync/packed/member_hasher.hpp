#pragma once
// Hashes the members of a pack on a second thread while the caller tars
// and compresses them (a 100k-file pack spent a third of its build
// hashing). The caller reads each member into space() — a slice of a
// chunk from a small pool — writes those bytes into the tar, and hands
// them over with filled(); the hasher compares each member it finishes
// with its content. finish() waits for every piece and names the first
// member whose bytes were not its content.
//
//  event                           | what happens
//  --------------------------------+------------------------------------
//  chunk full, or too little room  | handed to the hasher; the caller
//                                  | takes a free chunk (waits for one)
//  a member's last piece hashed    | digest compared with its content
//  finish()                        | the part-filled chunk handed over,
//                                  | waits until all are hashed
//  destruction (also on a throw)   | the thread stops and is joined
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "core/hash.hpp"

namespace sq::engine::sync::packed {

class MemberHasher {
 public:
  // `expected[i]` is the content member i must hash to.
  explicit MemberHasher(std::vector<Digest> expected);
  ~MemberHasher();
  MemberHasher(const MemberHasher&) = delete;
  MemberHasher& operator=(const MemberHasher&) = delete;

  // Room for up to `want` (> 0) more bytes of the current member.
  std::span<char> space(std::size_t want);
  // The first `n` bytes of the last space() belong to member `member`;
  // `last` ends that member (n may be 0).
  void filled(std::size_t member, std::size_t n, bool last);
  // Every handed piece hashed: the first member that did not match.
  std::optional<std::size_t> finish();

 private:
  struct Piece {
    std::size_t member, offset, length;
    bool last;
  };
  struct Chunk {
    std::vector<char> bytes;
    std::size_t used = 0;
    std::vector<Piece> pieces;
  };
  void hand_over();
  void run();
  void hash(const Chunk& c);

  std::vector<Digest> expected_;
  std::vector<Chunk> chunks_;
  std::size_t current_ = 0;
  std::deque<std::size_t> full_, free_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, busy_ = false;
  Hasher member_;
  std::optional<std::size_t> mismatch_;
  std::thread thread_;
};

}  // namespace sq::engine::sync::packed
