#include "engine/hash_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sq::engine {

namespace {

bool same_file_state(const FileStat& a, const FileStat& b) {
  return a.size == b.size && a.mtime_ns == b.mtime_ns && a.inode == b.inode && a.dev == b.dev;
}

}  // namespace

HashResult hash_file(int root, const HashJob& job, std::vector<char>& buffer) {
  HashResult r;
  r.job = job;
  int fd = open_beneath(root, job.path, O_RDONLY);
  if (fd < 0) {
    r.error = std::strerror(-fd);
    return r;
  }
  Fd owner(fd);
  struct stat before {}, after {};
  if (::fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)) {
    r.error = S_ISREG(before.st_mode) ? std::strerror(errno) : "no longer a regular file";
    return r;
  }
  if (before.st_size > (1 << 20)) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher h;
  std::int64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = std::strerror(errno);
      return r;
    }
    if (n == 0) break;
    h.update(buffer.data(), static_cast<std::size_t>(n));
    total += n;
  }
  if (::fstat(fd, &after) != 0) {
    r.error = std::strerror(errno);
    return r;
  }
  r.stat = to_file_stat(before);
  r.changed_while_hashed = !same_file_state(r.stat, to_file_stat(after)) || total != r.stat.size;
  r.hash = h.finalize();
  r.ok = true;
  return r;
}

HashPool::HashPool(int root, int workers, std::size_t max_in_flight) : root_(root), max_in_flight_(max_in_flight) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

HashPool::~HashPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  job_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool HashPool::can_submit() const {
  std::lock_guard lock(mu_);
  return next_seq_ - consumed_ < max_in_flight_;
}

bool HashPool::idle() const {
  std::lock_guard lock(mu_);
  return next_seq_ == consumed_;
}

void HashPool::submit(HashJob job) {
  std::unique_lock lock(mu_);
  job.seq = next_seq_++;
  if (!job.needs_hash) {
    HashResult r;
    r.job = std::move(job);
    r.ok = true;
    r.stat = r.job.walked;
    done_.emplace(r.job.seq, std::move(r));
    result_cv_.notify_all();
    return;
  }
  jobs_.push_back(std::move(job));
  lock.unlock();
  job_cv_.notify_one();
}

std::optional<HashResult> HashPool::next_ready(bool wait) {
  std::unique_lock lock(mu_);
  auto ready = [&] { return done_.count(consumed_) > 0; };
  if (!ready()) {
    if (!wait || next_seq_ == consumed_) return std::nullopt;
    result_cv_.wait(lock, ready);
  }
  auto node = done_.extract(consumed_++);
  return std::move(node.mapped());
}

void HashPool::work() {
  std::vector<char> buffer(1 << 20);
  for (;;) {
    HashJob job;
    {
      std::unique_lock lock(mu_);
      job_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_ && jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    HashResult r = hash_file(root_, job, buffer);
    {
      std::lock_guard lock(mu_);
      done_.emplace(r.job.seq, std::move(r));
    }
    result_cv_.notify_all();
  }
}

}  // namespace sq::engine
