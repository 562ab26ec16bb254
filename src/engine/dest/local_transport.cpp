// The local transport (spec sync-offload-restore.md §6.2): a directory on a
// mounted filesystem as a destination root. The root is opened once and every
// name is resolved beneath it with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so neither a symlink anywhere in a name nor ".."
// can redirect a read or a write; the final component is always handled with
// *at() calls that do not follow it either.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <mutex>
#include <utility>

#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/dest/transport.hpp"

namespace sq::dest {

bool is_clean_name(const std::string& name) { return is_clean_relative(name); }

namespace {

constexpr std::size_t kChunk = 1 << 20;
constexpr std::size_t kDirectAlign = 4096;
constexpr std::int64_t kEarlyWritebackBytes = 1 << 20;
// Open files waiting for the next flush. Beyond this many they are synced
// early, so a caller that flushes rarely cannot run out of descriptors.
constexpr std::size_t kMaxPendingFiles = 128;

std::string describe(int err) {
  switch (err) {
    case ELOOP: return "a symlink is in the way (symlinks are never followed)";
    case EXDEV: return "the name leads outside the destination root";
    case ENOTDIR: return "a parent is not a directory";
    case EEXIST: return "the name already exists (never replaced)";
    case ENOTEMPTY: return "the directory is not empty";
    default: return std::strerror(err);
  }
}

[[noreturn]] void fail_on(int err, const char* what, const std::string& name) {
  throw TransportError(err, fmt::format("{} {}: {}", what, escape_for_display(name), describe(err)));
}

void require_clean(const std::string& name, const char* what) {
  if (!is_clean_name(name))
    throw TransportError(EINVAL, fmt::format("{} {}: not a clean relative name", what, escape_for_display(name)));
}

struct SplitName {
  std::string parent;  // "" for the root
  std::string last;
};

SplitName split_name(const std::string& name) {
  auto slash = name.rfind('/');
  if (slash == std::string::npos) return {"", name};
  return {name.substr(0, slash), name.substr(slash + 1)};
}

std::vector<std::string> components(const std::string& rel) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < rel.size()) {
    auto end = std::min(rel.find('/', start), rel.size());
    out.push_back(rel.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

EntryType type_of(mode_t mode) {
  if (S_ISREG(mode)) return EntryType::file;
  if (S_ISDIR(mode)) return EntryType::directory;
  if (S_ISLNK(mode)) return EntryType::symlink;
  return EntryType::other;
}

Stat to_stat(const struct stat& st) { return {type_of(st.st_mode), static_cast<std::int64_t>(st.st_size), mtime_ns_of(st)}; }

int dup_fd(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

// Opens directory `rel` beneath `base`; -errno on failure. The kernel
// reports a symlink as the last component of a directory open as ENOTDIR;
// it is reported as ELOOP, so every symlink in the way reads the same.
int open_dir_beneath(int base, const std::string& rel) {
  int fd = open_beneath(base, rel, O_RDONLY | O_DIRECTORY);
  if (fd != -ENOTDIR) return fd;
  Fd probe(open_beneath(base, rel, O_PATH));  // O_PATH|O_NOFOLLOW yields the link itself
  struct stat st {};
  if (probe && ::fstat(probe.get(), &st) == 0 && S_ISLNK(st.st_mode)) return -ELOOP;
  return -ENOTDIR;
}

// read(2) that retries on EINTR; returns -errno on failure.
ssize_t read_some(int fd, char* buf, std::size_t len) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

void write_all(int fd, const char* buf, std::size_t len, const std::string& name) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_on(errno, "cannot write", name);
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
}

void set_mtime(int fd, std::int64_t mtime_ns, const std::string& name) {
  // Floor division, so mtimes before 1970 keep a non-negative nanosecond part.
  std::int64_t sec = mtime_ns / 1000000000LL;
  std::int64_t nsec = mtime_ns % 1000000000LL;
  if (nsec < 0) {
    nsec += 1000000000LL;
    --sec;
  }
  struct timespec times[2] = {{static_cast<time_t>(sec), static_cast<long>(nsec)},
                              {static_cast<time_t>(sec), static_cast<long>(nsec)}};
  if (::futimens(fd, times) != 0) fail_on(errno, "cannot set the mtime of", name);
}

// Checks that an opened name is a regular file and makes the descriptor
// blocking again (it was opened O_NONBLOCK so a FIFO cannot hang the open).
Fd require_regular(int fd, const char* what, const std::string& name, struct stat* out = nullptr) {
  Fd file(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_on(errno, what, name);
  if (out) *out = st;
  if (!S_ISREG(st.st_mode)) fail_on(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, what, name);
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) fail_on(errno, what, name);
  return file;
}

// On a memory filesystem the page cache is the only copy, so O_DIRECT
// succeeding there proves nothing about a device.
bool memory_backed(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;  // unknown: claim nothing
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

// Tests only: SQUIRREL_TEST_HANG_READS_AFTER=<bytes> makes every read of a
// got file hang for ever once that many bytes of it were delivered, so a
// test can kill squirrel at a known point mid-file instead of racing it.
std::optional<std::int64_t> hang_reads_after() {
  static const std::optional<std::int64_t> at = []() -> std::optional<std::int64_t> {
    const char* v = std::getenv("SQUIRREL_TEST_HANG_READS_AFTER");
    if (!v || !*v) return std::nullopt;
    return std::strtoll(v, nullptr, 10);
  }();
  return at;
}

[[noreturn]] void hang() {
  for (;;) ::pause();
}

class FdReader final : public Reader {
 public:
  FdReader(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  std::size_t read(char* buf, std::size_t len) override {
    if (auto at = hang_reads_after()) {
      if (done_ >= *at) hang();
      len = static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(len), *at - done_));
    }
    ssize_t n = read_some(fd_.get(), buf, len);
    if (n < 0) fail_on(static_cast<int>(-n), "cannot read", name_);
    done_ += n;
    return static_cast<std::size_t>(n);
  }
  Stat stat() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) fail_on(errno, "cannot stat", name_);
    return to_stat(st);
  }

 private:
  Fd fd_;
  std::string name_;
  std::int64_t done_ = 0;
};

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

// renameat2(RENAME_NOREPLACE); returns 0 or an errno value.
int rename_no_replace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  int err = errno;
  if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP) return err;
  // The filesystem cannot rename without replacing (exFAT, some FUSE
  // mounts): check, then rename. A foreign writer creating the target in
  // between would be replaced; squirrel cannot race itself here because one
  // run holds the destination (run gate plus marker). A genuine EINVAL
  // (a directory into itself) fails again below with the same error.
  struct stat st {};
  if (::fstatat(to_dir, to.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
  if (errno != ENOENT) return errno;
  if (::renameat(from_dir, from.c_str(), to_dir, to.c_str()) != 0) return errno;
  return 0;
}

// Filesystems whose syncfs() commits the journal (or transaction) and
// flushes the device cache, which makes one call as strong a barrier as an
// fsync of every file and directory written on them. Elsewhere (FAT, NFS,
// FUSE …) syncfs may skip the device flush, so each file is fsynced.
bool syncfs_is_a_barrier(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == XFS_SUPER_MAGIC || fs.f_type == BTRFS_SUPER_MAGIC;
}

class LocalTransport final : public Transport {
 public:
  LocalTransport(const std::string& root, LocalSyncCalls calls) : root_path_(root), calls_(std::move(calls)) {
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_on(errno, "cannot open destination root", root);
    root_ = Fd(fd);
    struct stat st {};
    if (syncfs_is_a_barrier(fd) && ::fstat(fd, &st) == 0) root_dev_ = st.st_dev;
  }

  Stat stat(const std::string& name) override;
  std::vector<Entry> list(const std::string& dir) override;
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override;
  std::unique_ptr<Reader> get(const std::string& name) override;
  ReadBack read_back(const std::string& name) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove(const std::string& name) override;
  void mkdirs(const std::string& dir) override;
  void flush() override;

 private:
  int try_open_dir(const std::string& rel);
  Fd open_dir(const std::string& rel, const char* what, const std::string& name);
  Fd make_dirs(const std::string& rel, const char* what, const std::string& name);
  int create_component(int parent, const std::string& component);
  PutResult copy_into(int fd, const ReadFn& read, const std::string& name);
  std::optional<ReadBack> hash_direct(int fd, struct stat st, const std::string& name);
  ReadBack hash_buffered(const std::string& name);
  void mark_dirty(int dir);
  void keep_pending(Fd file);
  void note_error(int err, const std::string& what);
  int sync_file(int fd) { return calls_.fsync ? calls_.fsync(fd) : ::fsync(fd); }
  int sync_filesystem(int fd) { return calls_.syncfs ? calls_.syncfs(fd) : ::syncfs(fd); }

  std::string root_path_;
  LocalSyncCalls calls_;
  Fd root_;
  // Durability bookkeeping, shared by concurrent calls.
  std::mutex mu_;
  std::vector<Fd> pending_files_;
  std::map<std::pair<dev_t, ino_t>, Fd> dirty_dirs_;  // keyed by identity: a renamed dir stays one entry
  int deferred_err_ = 0;                              // an early sync failed; the next flush reports it
  std::string deferred_what_;
  // Set when the root's filesystem makes syncfs() a barrier: files and
  // directories on that device are then counted instead of kept, and one
  // syncfs() of the root covers them all. syncfs() also reports any
  // writeback error on the filesystem since the root was opened.
  std::optional<dev_t> root_dev_;
  std::size_t unsynced_on_root_ = 0;
  bool covered_by_syncfs(int fd, const struct stat* known = nullptr);
  bool counted_on_root(int fd) {
    std::lock_guard lock(mu_);
    return covered_by_syncfs(fd);
  }
};

// Counts the descriptor as covered by the next syncfs() when it lives on
// the root's filesystem. The caller holds mu_.
bool LocalTransport::covered_by_syncfs(int fd, const struct stat* known) {
  if (!root_dev_) return false;
  struct stat st {};
  if (!known) {
    if (::fstat(fd, &st) != 0) return false;
    known = &st;
  }
  if (known->st_dev != *root_dev_) return false;
  ++unsynced_on_root_;
  return true;
}

// A directory beneath the root ("" is the root itself); -errno on failure.
int LocalTransport::try_open_dir(const std::string& rel) {
  if (rel.empty()) {
    int fd = dup_fd(root_.get());
    return fd < 0 ? -errno : fd;
  }
  return open_dir_beneath(root_.get(), rel);
}

Fd LocalTransport::open_dir(const std::string& rel, const char* what, const std::string& name) {
  int fd = try_open_dir(rel);
  if (fd < 0) fail_on(-fd, what, name);
  return Fd(fd);
}

// Creates `component` in `parent` if missing; returns an open descriptor of
// it or -errno. Each created directory and its parent become dirty.
int LocalTransport::create_component(int parent, const std::string& component) {
  int fd = open_dir_beneath(parent, component);
  if (fd != -ENOENT) return fd;
  bool created = ::mkdirat(parent, component.c_str(), 0755) == 0;
  if (!created && errno != EEXIST) return -errno;  // EEXIST: a concurrent call made it
  fd = open_dir_beneath(parent, component);
  if (created && fd >= 0) {
    mark_dirty(parent);
    mark_dirty(fd);
  }
  return fd;
}

// Opens directory `rel`, creating it and its missing parents one mkdir at a time.
Fd LocalTransport::make_dirs(const std::string& rel, const char* what, const std::string& name) {
  int fd = try_open_dir(rel);
  if (fd >= 0) return Fd(fd);
  if (fd != -ENOENT) fail_on(-fd, what, name);
  Fd dir = open_dir("", what, name);
  for (const auto& component : components(rel)) {
    int next = create_component(dir.get(), component);
    if (next < 0) fail_on(-next, what, name);
    dir = Fd(next);
  }
  return dir;
}

void LocalTransport::mark_dirty(int dir) {
  struct stat st {};
  if (::fstat(dir, &st) != 0) return;  // cannot happen for an open descriptor
  std::lock_guard lock(mu_);
  if (covered_by_syncfs(dir, &st)) return;
  auto key = std::make_pair(st.st_dev, st.st_ino);
  if (dirty_dirs_.count(key)) return;
  int copy = dup_fd(dir);
  if (copy < 0) return note_error(errno, "cannot keep a directory for the next flush");
  dirty_dirs_.emplace(key, Fd(copy));
}

// Keeps the first failure of work done outside flush() for the next flush
// to report. The caller holds mu_.
void LocalTransport::note_error(int err, const std::string& what) {
  if (deferred_err_ != 0) return;
  deferred_err_ = err;
  deferred_what_ = what;
}

void LocalTransport::keep_pending(Fd file) {
  std::lock_guard lock(mu_);
  if (covered_by_syncfs(file.get())) return;
  pending_files_.push_back(std::move(file));
  if (pending_files_.size() < kMaxPendingFiles) return;
  for (auto& f : pending_files_)
    if (sync_file(f.get()) != 0) note_error(errno, "cannot flush a written file");
  pending_files_.clear();
}

Stat LocalTransport::stat(const std::string& name) {
  require_clean(name, "cannot stat");
  auto [parent, last] = split_name(name);
  int fd = try_open_dir(parent);
  if (fd == -ENOENT) return {};
  if (fd < 0) fail_on(-fd, "cannot stat", name);
  Fd dir(fd);
  struct stat st {};
  if (::fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return to_stat(st);
  if (errno == ENOENT) return {};
  fail_on(errno, "cannot stat", name);
}

// "" lists the destination root.
std::vector<Entry> LocalTransport::list(const std::string& dir) {
  if (!dir.empty()) require_clean(dir, "cannot list");
  Fd fd = open_dir(dir, "cannot list", dir);
  std::unique_ptr<DIR, DirCloser> dp(::fdopendir(fd.get()));
  if (!dp) fail_on(errno, "cannot list", dir);
  fd.release();  // now owned by dp
  std::vector<Entry> out;
  errno = 0;
  while (struct dirent* e = ::readdir(dp.get())) {
    std::string entry_name = e->d_name;
    if (entry_name == "." || entry_name == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(dp.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      out.push_back({entry_name, to_stat(st)});
    else if (errno != ENOENT)  // ENOENT: removed while we listed
      fail_on(errno, "cannot stat", dir.empty() ? entry_name : dir + "/" + entry_name);
    errno = 0;
  }
  if (errno != 0) fail_on(errno, "cannot list", dir);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

PutResult LocalTransport::copy_into(int fd, const ReadFn& read, const std::string& name) {
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Hasher hasher;
  PutResult result;
  for (;;) {
    std::size_t n = read(buf.get(), kChunk);
    if (n == 0) break;
    if (n > kChunk) throw TransportError(EINVAL, "the source of " + escape_for_display(name) + " overran its buffer");
    write_all(fd, buf.get(), n, name);
    hasher.update(buf.get(), n);
    result.bytes += static_cast<std::int64_t>(n);
    note_progress();
  }
  result.hash = hasher.finalize();
  return result;
}

PutResult LocalTransport::put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) {
  require_clean(name, "cannot put");
  auto [parent, last] = split_name(name);
  Fd dir = make_dirs(parent, "cannot put", name);
  int fd = ::openat(dir.get(), last.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail_on(errno, "cannot create", name);
  Fd file(fd);
  PutResult result;
  try {
    result = copy_into(fd, read, name);
    set_mtime(fd, mtime_ns, name);
    result.mtime_ns = mtime_ns;
  } catch (...) {
    // The file is ours (created exclusively just now); a half-written one
    // must not stay under the name.
    ::unlinkat(dir.get(), last.c_str(), 0);
    throw;
  }
  // Starts writeback of a large file now, overlapping it with the next
  // one, and drops its pages once clean. Small files are left to the
  // batch's flush, which writes neighbours back as one large request
  // instead of one device request per small file.
  if (!root_dev_ || result.bytes >= kEarlyWritebackBytes) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  // A file lives on its directory's filesystem: one look at the file
  // tells whether the next syncfs() covers both.
  if (counted_on_root(fd)) return result;
  mark_dirty(dir.get());
  keep_pending(std::move(file));
  return result;
}

std::unique_ptr<Reader> LocalTransport::get(const std::string& name) {
  require_clean(name, "cannot get");
  int fd = open_beneath(root_.get(), name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail_on(-fd, "cannot get", name);
  return std::make_unique<FdReader>(require_regular(fd, "cannot get", name), name);
}

// A direct read asks for no more than the rest of the file, rounded up to
// the alignment: the part of a request beyond the end is a "hole" the
// kernel zero-fills first, a megabyte of memset per small file otherwise.
// At the end one aligned block is asked for, to see end-of-file.
std::size_t direct_request(std::int64_t size, std::int64_t done) {
  if (done >= size) return kDirectAlign;
  auto rest = static_cast<std::size_t>(size - done);
  return std::min(kChunk, (rest + kDirectAlign - 1) / kDirectAlign * kDirectAlign);
}

// Reads through O_DIRECT; nullopt when the filesystem refuses direct reads.
std::optional<ReadBack> LocalTransport::hash_direct(int fd, struct stat st, const std::string& name) {
  // Sized to the file: a small file's read-back need not map a megabyte.
  std::size_t capacity = std::max(direct_request(st.st_size, 0), kDirectAlign);
  std::unique_ptr<char, FreeDeleter> buf(static_cast<char*>(std::aligned_alloc(kDirectAlign, capacity)));
  if (!buf) throw std::bad_alloc();
  Hasher hasher;
  ReadBack result;
  for (;;) {
    ssize_t n = read_some(fd, buf.get(), direct_request(st.st_size, result.bytes));
    if (n == 0) break;
    if (n == -EINVAL) {
      // Some filesystems reject the unaligned read at the end of a file
      // whose size is not a block multiple: that is the end, if the size
      // says so; anything else means direct reads do not work here.
      if (::fstat(fd, &st) == 0 && st.st_size == result.bytes) break;
      return std::nullopt;
    }
    if (n < 0) fail_on(static_cast<int>(-n), "cannot read back", name);
    hasher.update(buf.get(), static_cast<std::size_t>(n));
    result.bytes += n;
    note_progress();
  }
  result.hash = hasher.finalize();
  result.checksum = to_hex(result.hash);
  result.from_medium = true;
  return result;
}

// The fallback: drop the file's clean pages, then read normally. Whether
// the bytes came from the device is not known, so it is not claimed —
// except on a memory filesystem, where the pages are the medium.
ReadBack LocalTransport::hash_buffered(const std::string& name) {
  int raw = open_beneath(root_.get(), name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (raw < 0) fail_on(-raw, "cannot read back", name);
  Fd fd = require_regular(raw, "cannot read back", name);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Hasher hasher;
  ReadBack result;
  for (;;) {
    ssize_t n = read_some(fd.get(), buf.get(), kChunk);
    if (n == 0) break;
    if (n < 0) fail_on(static_cast<int>(-n), "cannot read back", name);
    hasher.update(buf.get(), static_cast<std::size_t>(n));
    result.bytes += n;
    note_progress();
  }
  result.hash = hasher.finalize();
  result.checksum = to_hex(result.hash);
  result.from_medium = memory_backed(fd.get());
  return result;
}

ReadBack LocalTransport::read_back(const std::string& name) {
  require_clean(name, "cannot read back");
  int raw = open_beneath(root_.get(), name, O_RDONLY | O_DIRECT | O_NONBLOCK | O_NOCTTY);
  if (raw == -EINVAL) return hash_buffered(name);
  if (raw < 0) fail_on(-raw, "cannot read back", name);
  struct stat st {};
  Fd fd = require_regular(raw, "cannot read back", name, &st);
  if (auto direct = hash_direct(fd.get(), st, name)) return *direct;
  return hash_buffered(name);
}

void LocalTransport::rename(const std::string& from, const std::string& to) {
  require_clean(from, "cannot rename");
  require_clean(to, "cannot rename to");
  if (to.size() > from.size() && to.compare(0, from.size() + 1, from + "/") == 0)
    throw TransportError(EINVAL, fmt::format("cannot rename {} into itself ({})", escape_for_display(from),
                                             escape_for_display(to)));
  auto [from_parent, from_last] = split_name(from);
  auto [to_parent, to_last] = split_name(to);
  Fd from_dir = open_dir(from_parent, "cannot rename", from);
  struct stat st {};
  if (::fstatat(from_dir.get(), from_last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    fail_on(errno, "cannot rename", from);
  Fd to_dir = make_dirs(to_parent, "cannot rename to", to);
  if (int err = rename_no_replace(from_dir.get(), from_last, to_dir.get(), to_last))
    fail_on(err, "cannot rename to", to);
  if (counted_on_root(to_dir.get())) return;  // a rename never crosses filesystems
  mark_dirty(from_dir.get());
  mark_dirty(to_dir.get());
}

void LocalTransport::remove(const std::string& name) {
  require_clean(name, "cannot remove");
  auto [parent, last] = split_name(name);
  Fd dir = open_dir(parent, "cannot remove", name);
  struct stat st {};
  if (::fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail_on(errno, "cannot remove", name);
  int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  if (::unlinkat(dir.get(), last.c_str(), flags) != 0) fail_on(errno, "cannot remove", name);
  mark_dirty(dir.get());
}

void LocalTransport::mkdirs(const std::string& dir) {
  require_clean(dir, "cannot create directory");
  make_dirs(dir, "cannot create directory", dir);
}

void LocalTransport::flush() {
  std::vector<Fd> files;
  std::map<std::pair<dev_t, ino_t>, Fd> dirs;
  int err = 0;
  std::string what;
  std::size_t on_root = 0;
  {
    std::lock_guard lock(mu_);
    files.swap(pending_files_);
    dirs.swap(dirty_dirs_);
    std::swap(err, deferred_err_);
    what.swap(deferred_what_);
    std::swap(on_root, unsynced_on_root_);
  }
  // Everything is synced even after a failure, so as much as possible is
  // durable; the first failure is reported. A failed fsync is not retried:
  // Linux may mark the pages clean, so a retry could falsely succeed.
  // A sync's errno (0 when it succeeded); each sync is progress to a stall guard.
  auto result_of = [](int rc) {
    int e = rc == 0 ? 0 : errno;
    note_progress();
    return e;
  };
  auto note = [&](int e, const char* failed) {
    if (e == 0 || err != 0) return;
    err = e;
    what = failed;
  };
  if (on_root > 0) note(result_of(sync_filesystem(root_.get())), "cannot flush the destination filesystem");
  for (auto& f : files) note(result_of(sync_file(f.get())), "cannot flush a written file");
  for (auto& [key, d] : dirs) {
    int e = result_of(sync_file(d.get()));
    // Directory sync "unsupported" (EINVAL; ENOTSUP is EOPNOTSUPP on Linux)
    // means the filesystem has nothing more to offer: not a failure.
    if (e != EINVAL && e != EOPNOTSUPP) note(e, "cannot flush a directory");
  }
  if (err != 0)
    throw TransportError(err, fmt::format("{} under {}: {}; what was written since the last flush is not known to "
                                          "be durable",
                                          what, root_path_, std::strerror(err)));
}

}  // namespace

std::unique_ptr<Transport> open_local_transport(const std::string& root, LocalSyncCalls calls) {
  return std::make_unique<LocalTransport>(root, std::move(calls));
}

}  // namespace sq::dest
