#include "engine/hash_pool.hpp"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace sq::engine {

namespace {

bool same_file_state(const FileStat& a, const FileStat& b) {
  return a.size == b.size && a.mtime_ns == b.mtime_ns && a.inode == b.inode && a.dev == b.dev;
}

}  // namespace

namespace {

// O_NONBLOCK: a FIFO swapped in after the walk must not block the open (and
// a regular file's reads ignore the flag).
int open_for_hash(int root, const HashJob& job) {
  constexpr int kFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
  if (!job.dir) return open_beneath(root, job.path, kFlags);
  auto slash = job.path.rfind('/');
  const char* name = job.path.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  int fd = ::openat(job.dir->get(), name, kFlags | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

// Stops at the size the file had when opened: a file that grew shows in the
// second fstat, so the extra read for end-of-file buys nothing.
bool hash_stream(int fd, std::int64_t expected, Hasher& h, std::vector<char>& buffer, std::int64_t& total,
                 std::string& error) {
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    h.update(buffer.data(), static_cast<std::size_t>(n));
    total += n;
    if (total == expected) return true;
  }
}

// Large files are hashed through a read-only mapping: BLAKE3 reads the page
// cache in place, without the copy read() makes (a tenth of the time of a
// large-file index). A file truncated while mapped raises SIGBUS on the
// pages past its new end; the handler turns that into a jump back here
// for the thread that is hashing, and the file counts as changed.
constexpr std::int64_t kMapMin = 16 << 20;
thread_local sigjmp_buf* t_mapped_hash = nullptr;

void on_sigbus(int sig, siginfo_t*, void*) {
  if (t_mapped_hash) siglongjmp(*t_mapped_hash, 1);
  ::signal(sig, SIG_DFL);  // not a mapped hash: die as the signal says
  ::raise(sig);
}

void install_sigbus_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);
  });
}

}  // namespace

// The jump target lives in this frame only while Hasher::update runs: the
// BLAKE3 C code it calls holds no locks and owns no memory to release.
Mapped hash_mapped(int fd, std::int64_t size, Hasher& h) {
  void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Mapped::unavailable;
  ::madvise(p, static_cast<std::size_t>(size), MADV_SEQUENTIAL);
  install_sigbus_handler();
  sigjmp_buf jump;
  volatile Mapped result = Mapped::hashed;
  if (sigsetjmp(jump, 1) == 0) {
    t_mapped_hash = &jump;
    h.update(p, static_cast<std::size_t>(size));
  } else {
    result = Mapped::truncated;
  }
  t_mapped_hash = nullptr;
  ::munmap(p, static_cast<std::size_t>(size));
  return result;
}

HashResult hash_file(int root, const HashJob& job, std::vector<char>& buffer,
                     const std::function<void(std::int64_t)>& opened) {
  HashResult r;
  r.job = job;
  int fd = open_for_hash(root, job);
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
  if (opened) opened(before.st_size);
  if (before.st_size > (1 << 20)) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher h;
  std::int64_t total = 0;
  auto mapped = before.st_size >= kMapMin ? hash_mapped(fd, before.st_size, h) : Mapped::unavailable;
  if (mapped == Mapped::truncated) {
    r.stat = to_file_stat(before);
    r.changed_while_hashed = true;
    r.ok = true;
    return r;
  }
  if (mapped == Mapped::hashed) total = before.st_size;
  else if (!hash_stream(fd, before.st_size, h, buffer, total, r.error)) return r;
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

bool HashPool::can_submit() const { return next_seq_ - consumed_ < max_in_flight_; }

bool HashPool::idle() const { return next_seq_ == consumed_; }

namespace {
constexpr std::size_t kChunkFiles = 64;
constexpr std::int64_t kChunkBytes = 8 << 20;
}  // namespace

void HashPool::flush_chunk() {
  if (chunk_.empty()) return;
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(chunk_));
  }
  chunk_.clear();
  chunk_bytes_ = 0;
  job_cv_.notify_one();
}

void HashPool::submit(HashJob job) {
  job.seq = next_seq_++;
  if (!job.needs_hash) {
    HashResult r;
    r.job = std::move(job);
    r.ok = true;
    r.stat = r.job.walked;
    std::lock_guard lock(mu_);
    done_.emplace(r.job.seq, std::move(r));
    return;
  }
  chunk_bytes_ += job.walked.size;
  chunk_.push_back(std::move(job));
  if (chunk_.size() >= kChunkFiles || chunk_bytes_ >= kChunkBytes) flush_chunk();
}

std::optional<HashResult> HashPool::next_ready(bool wait) {
  if (next_seq_ == consumed_) return std::nullopt;
  std::unique_lock lock(mu_);
  auto ready = [&] { return done_.count(consumed_) > 0; };
  if (!ready()) {
    if (!wait) return std::nullopt;
    lock.unlock();
    flush_chunk();  // the result we wait for may still sit in the local chunk
    lock.lock();
    awaited_ = consumed_;
    result_cv_.wait(lock, ready);
    awaited_.reset();
  }
  auto node = done_.extract(consumed_++);
  return std::move(node.mapped());
}

// A chunk is cut at kChunkBytes by the sizes the walk saw; files the walk
// did not stat count as empty there. A worker that opens a large one hands
// the rest of its chunk back, so no worker sits on a queue of large files
// while another is idle.
void HashPool::share_rest(std::vector<HashJob>& chunk, std::size_t from) {
  if (from >= chunk.size()) return;
  std::vector<HashJob> rest(std::make_move_iterator(chunk.begin() + static_cast<std::ptrdiff_t>(from)),
                            std::make_move_iterator(chunk.end()));
  chunk.resize(from);
  {
    std::lock_guard lock(mu_);
    jobs_.push_front(std::move(rest));
  }
  job_cv_.notify_one();
}

void HashPool::work() {
  std::vector<char> buffer(1 << 20);
  for (;;) {
    std::vector<HashJob> chunk;
    {
      std::unique_lock lock(mu_);
      job_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_ && jobs_.empty()) return;
      chunk = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::vector<HashResult> results;
    results.reserve(chunk.size());
    for (std::size_t i = 0; i < chunk.size(); ++i)
      results.push_back(hash_file(root_, chunk[i], buffer, [&](std::int64_t size) {
        if (size >= kChunkBytes) share_rest(chunk, i + 1);
      }));
    bool wake;
    {
      std::lock_guard lock(mu_);
      for (auto& r : results) done_.emplace(r.job.seq, std::move(r));
      wake = awaited_ && done_.count(*awaited_);
    }
    if (wake) result_cv_.notify_one();
  }
}

}  // namespace sq::engine
