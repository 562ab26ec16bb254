#pragma once
// Applies index batches on a thread of its own, so database writes overlap
// with walking and hashing. Batches are applied in the order given; the
// first failure is kept and rethrown to the producer. The sink owns its own
// connection: SQLite connections are opened without a mutex, so each is used
// by one thread only.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "store/files.hpp"

namespace sq::engine {

class BatchSink {
 public:
  BatchSink(store::Db db, std::int64_t volume_id, std::int64_t run_id, std::size_t max_queued = 2);
  ~BatchSink();
  BatchSink(const BatchSink&) = delete;
  BatchSink& operator=(const BatchSink&) = delete;
  // Blocks while the queue is full; rethrows an earlier failure.
  void push(std::vector<store::Observation> batch);
  // Waits until everything pushed is applied; rethrows a failure.
  void finish();

 private:
  void run();
  void rethrow_locked();
  store::Db db_;
  std::int64_t volume_id_, run_id_;
  std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<store::Observation>> queue_;
  bool busy_ = false, closing_ = false;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace sq::engine
