#include "engine/batch_sink.hpp"

namespace sq::engine {

// 64 MiB of page cache holds the contents index of about a million files:
// digests land on random pages, and with a smaller cache most inserts
// re-read a page from the file and spill it again (a first index of 1M
// files: 10.4 s with 16 MiB, 7.7 s with 64 MiB). The cache fills only as
// far as the database is large.
BatchSink::BatchSink(store::Db db, std::int64_t volume_id, std::int64_t run_id, std::size_t max_queued,
                     Clock::duration commit_every)
    : db_(std::move(db)), volume_id_(volume_id), run_id_(run_id), max_queued_(max_queued), commit_every_(commit_every) {
  db_.exec("PRAGMA cache_size=-65536");
  thread_ = std::thread([this] { run(); });
}

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
  finishing_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return failure_ || (queue_.empty() && !busy_ && !tx_open_); });
  rethrow_locked();
}

// An open transaction is committed when its interval is up, when the
// producer says it is finished, or when nothing arrives before the
// interval ends: a slow producer must not hold the write lock for long.
BatchSink::Step BatchSink::next_step(std::unique_lock<std::mutex>& lock, std::vector<store::Observation>& batch) {
  auto ready = [&] { return closing_ || failure_ || !queue_.empty() || (finishing_ && tx_open_); };
  if (tx_open_) cv_.wait_until(lock, tx_began_ + commit_every_, ready);
  else cv_.wait(lock, ready);
  if (closing_ || failure_) return Step::stop;
  if (queue_.empty()) return Step::commit;
  batch = std::move(queue_.front());
  queue_.pop_front();
  return Step::apply;
}

void BatchSink::apply(const std::vector<store::Observation>& batch) {
  if (!tx_) {
    tx_.emplace(db_);
    tx_began_ = Clock::now();
  }
  store::apply_index_entries(db_, volume_id_, run_id_, batch);
  if (Clock::now() - tx_began_ >= commit_every_) commit();
}

void BatchSink::commit() {
  if (!tx_) return;
  tx_->commit();
  tx_.reset();
}

void BatchSink::run() {
  for (;;) {
    std::vector<store::Observation> batch;
    Step step;
    {
      std::unique_lock lock(mu_);
      step = next_step(lock, batch);
      if (step == Step::stop) break;
      busy_ = true;
    }
    std::exception_ptr err;
    try {
      step == Step::apply ? apply(batch) : commit();
    } catch (...) {
      err = std::current_exception();
      tx_.reset();  // rolls back what the failed transaction held
    }
    std::lock_guard lock(mu_);
    busy_ = false;
    tx_open_ = tx_.has_value();
    if (err) failure_ = err;
    cv_.notify_all();
  }
  tx_.reset();
}

}  // namespace sq::engine
