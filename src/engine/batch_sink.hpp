#pragma once
// Applies index batches on a thread of its own, so database writes overlap
// with walking and hashing. Batches are applied in the order given; the
// first failure is kept and rethrown to the producer. The sink owns its own
// connection: SQLite connections are opened without a mutex, so each is used
// by one thread only.
//
// One write transaction spans the batches that arrive within a commit
// interval. Every commit writes each database page its batches touched, and
// digests land at random places in the contents index, so the cost of a
// commit grows with the index, not with the batch: on a large volume,
// per-batch commits would write the whole index again every few thousand
// files. Committing by time bounds that to one rewrite per interval.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store/files.hpp"

namespace sq::engine {

class BatchSink {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kCommitEvery = std::chrono::milliseconds(1000);

  BatchSink(store::Db db, std::int64_t volume_id, std::int64_t run_id, std::size_t max_queued = 2,
            Clock::duration commit_every = kCommitEvery);
  // Without finish(), what is not yet committed is rolled back.
  ~BatchSink();
  BatchSink(const BatchSink&) = delete;
  BatchSink& operator=(const BatchSink&) = delete;
  // Blocks while the queue is full; rethrows an earlier failure.
  void push(std::vector<store::Observation> batch);
  // Waits until everything pushed is applied and committed; rethrows a failure.
  void finish();

 private:
  enum class Step { apply, commit, stop };
  void run();
  Step next_step(std::unique_lock<std::mutex>& lock, std::vector<store::Observation>& batch);
  void apply(const std::vector<store::Observation>& batch);
  void commit();
  void rethrow_locked();

  store::Db db_;
  std::int64_t volume_id_, run_id_;
  std::size_t max_queued_;
  Clock::duration commit_every_;
  std::optional<store::Tx> tx_;  // touched by the sink thread only
  Clock::time_point tx_began_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<store::Observation>> queue_;
  bool busy_ = false, closing_ = false, finishing_ = false, tx_open_ = false;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace sq::engine
