#pragma once
// A pool of hashing workers fed in walk order. Results come back in the
// order jobs were submitted, so the database receives rows in a
// deterministic order whatever the worker count.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.hpp"
#include "core/hash.hpp"

namespace sq::engine {

struct HashJob {
  std::uint64_t seq = 0;
  std::string path;  // volume-relative
  bool needs_hash = true;
  FileStat walked;   // what the walk saw
  // The listed directory; when set, the file is opened by its last name
  // component relative to it instead of by `path` beneath the root.
  std::shared_ptr<const Fd> dir;
};

struct HashResult {
  HashJob job;
  bool ok = false;
  bool changed_while_hashed = false;
  std::string error;  // when !ok
  Digest hash{};
  FileStat stat;      // as observed around the hash
};

// Hashes `rel` beneath root: fstat before, stream through BLAKE3, fstat
// after. Any change of size, mtime or inode, or a byte count that differs
// from the size, marks the result changed_while_hashed.
// `opened`, when given, is told the file's size once it is open, before
// any byte is hashed.
HashResult hash_file(int root, const HashJob& job, std::vector<char>& buffer,
                     const std::function<void(std::int64_t)>& opened = {});

// How hash_file hashes files of 16 MiB and more: `size` bytes of `fd`
// through a read-only mapping. `truncated` when the file ended before
// `size` (it shrank while hashed: the SIGBUS is caught), `unavailable` when
// it cannot be mapped.
enum class Mapped { hashed, truncated, unavailable };
Mapped hash_mapped(int fd, std::int64_t size, Hasher& h);

class HashPool {
 public:
  HashPool(int root, int workers, std::size_t max_in_flight);
  ~HashPool();
  HashPool(const HashPool&) = delete;
  HashPool& operator=(const HashPool&) = delete;

  // Blocks while too many jobs are in flight; call next_ready() to drain.
  bool can_submit() const;
  void submit(HashJob job);
  // The next result in submission order, waiting for it when `wait`.
  std::optional<HashResult> next_ready(bool wait);
  bool idle() const;  // nothing submitted remains unconsumed

 private:
  void work();
  void share_rest(std::vector<HashJob>& chunk, std::size_t from);
  void flush_chunk();
  int root_;
  std::size_t max_in_flight_;
  // Jobs travel in chunks so that a lock round trip and a wake-up are paid
  // per chunk, not per small file.
  std::vector<HashJob> chunk_;
  std::int64_t chunk_bytes_ = 0;
  std::uint64_t next_seq_ = 0, consumed_ = 0;  // touched by the submitting thread only
  mutable std::mutex mu_;
  std::condition_variable job_cv_, result_cv_;
  std::deque<std::vector<HashJob>> jobs_;
  std::map<std::uint64_t, HashResult> done_;
  // The result the submitting thread sleeps on: a worker wakes it only when
  // that one is done, not for every finished chunk.
  std::optional<std::uint64_t> awaited_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sq::engine
