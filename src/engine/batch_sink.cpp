#include "engine/batch_sink.hpp"

namespace sq::engine {

BatchSink::BatchSink(store::Db db, std::int64_t volume_id, std::int64_t run_id, std::size_t max_queued)
    : db_(std::move(db)), volume_id_(volume_id), run_id_(run_id), max_queued_(max_queued), thread_([this] { run(); }) {}

BatchSink::~BatchSink() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchSink::rethrow_locked() {
  if (failure_) std::rethrow_exception(failure_);
}

void BatchSink::push(std::vector<store::Observation> batch) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return failure_ || queue_.size() < max_queued_; });
  rethrow_locked();
  queue_.push_back(std::move(batch));
  cv_.notify_all();
}

void BatchSink::finish() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return failure_ || (queue_.empty() && !busy_); });
  rethrow_locked();
}

void BatchSink::run() {
  for (;;) {
    std::vector<store::Observation> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty() || failure_) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    std::exception_ptr err;
    try {
      store::apply_index_batch(db_, volume_id_, run_id_, batch);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard lock(mu_);
    busy_ = false;
    if (err) failure_ = err;
    cv_.notify_all();
  }
}

}  // namespace sq::engine
