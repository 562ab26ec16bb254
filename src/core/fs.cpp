#include "core/fs.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "core/error.hpp"

namespace sq {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd open_root(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_errno(fmt::format("cannot open directory {}", path.string()), errno);
  return Fd(fd);
}

bool is_clean_relative(const std::string& rel) {
  if (rel.empty() || rel.front() == '/' || rel.find('\0') != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    auto part = std::string_view(rel).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

namespace {

bool g_openat2_missing = false;

int open_by_components(int root, const std::string& rel, int flags, mode_t mode) {
  int dir = root;
  std::size_t start = 0;
  for (;;) {
    auto end = rel.find('/', start);
    bool last = end == std::string::npos;
    std::string part = rel.substr(start, last ? std::string::npos : end - start);
    int f = last ? ::openat(dir, part.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode)
                 : ::openat(dir, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    if (dir != root) ::close(dir);
    if (f < 0) return -err;
    if (last) return f;
    dir = f;
    start = end + 1;
  }
}

}  // namespace

int open_beneath(int root, const std::string& rel, int flags, mode_t mode) {
  if (!is_clean_relative(rel)) return -EINVAL;
  if (!g_openat2_missing) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != ENOSYS) return -errno;
    g_openat2_missing = true;
  }
  return open_by_components(root, rel, flags, mode);
}

std::int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

FileStat to_file_stat(const struct stat& st) {
  return {static_cast<std::int64_t>(st.st_size), mtime_ns_of(st), static_cast<std::int64_t>(st.st_ino),
          static_cast<std::int64_t>(st.st_dev), st.st_mode};
}

std::optional<std::string> read_small_file(int root, const std::string& rel, std::size_t max_bytes) {
  int fd = open_beneath(root, rel, O_RDONLY);
  if (fd == -ENOENT) return std::nullopt;
  if (fd < 0) fail_errno(fmt::format("cannot read {}", rel), -fd);
  Fd owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(fmt::format("cannot stat {}", rel), errno);
  if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::corrupt, fmt::format("{} is not a regular file", rel));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno(fmt::format("cannot read {}", rel), errno);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) throw Error(ErrorKind::corrupt, fmt::format("{} is unexpectedly large", rel));
  }
  return out;
}

namespace {

void write_all_or_throw(int fd, const std::string& content, const std::string& what) {
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno(fmt::format("cannot write {}", what), errno);
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail_errno(fmt::format("cannot flush {}", what), errno);
}

Fd open_parent_dir(int root, const std::string& rel) {
  auto slash = rel.rfind('/');
  int dir = slash == std::string::npos ? ::fcntl(root, F_DUPFD_CLOEXEC, 0)
                                       : open_beneath(root, rel.substr(0, slash), O_RDONLY | O_DIRECTORY);
  if (dir < 0) fail_errno(fmt::format("cannot open the folder of {}", rel), dir == -1 ? errno : -dir);
  return Fd(dir);
}

// An unnamed file linked in once complete: a crash leaves nothing behind.
bool link_unnamed(int dir, const std::string& name, const std::string& content, const std::string& rel) {
  int fd = ::openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;  // the filesystem has no O_TMPFILE: use a named temp file
  Fd owner(fd);
  write_all_or_throw(fd, content, rel);
  auto proc = fmt::format("/proc/self/fd/{}", fd);
  if (::linkat(AT_FDCWD, proc.c_str(), dir, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
  if (errno != ENOENT) fail_errno(fmt::format("cannot create {}", rel), errno);
  return false;  // no /proc
}

void link_named_temp(int dir, const std::string& name, const std::string& content, const std::string& rel) {
  auto tmp = fmt::format(".{}.tmp-{}", name, ::getpid());
  int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno(fmt::format("cannot create a temporary file beside {}", rel), errno);
  Fd owner(fd);
  int linked = -1, link_errno = 0;
  try {
    write_all_or_throw(fd, content, rel);
    linked = ::linkat(dir, tmp.c_str(), dir, name.c_str(), 0);
    link_errno = errno;
  } catch (...) {
    ::unlinkat(dir, tmp.c_str(), 0);  // our own temp file: safe to remove
    throw;
  }
  ::unlinkat(dir, tmp.c_str(), 0);
  if (linked != 0) fail_errno(fmt::format("cannot create {}", rel), link_errno);
}

}  // namespace

// The name appears only once the content is complete and flushed (link()
// never replaces), so neither a crash nor a concurrent reader sees a
// half-written file under `rel`.
void create_file_exclusive(int root, const std::string& rel, const std::string& content) {
  Fd dir = open_parent_dir(root, rel);
  auto slash = rel.rfind('/');
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (!link_unnamed(dir.get(), name, content, rel)) link_named_temp(dir.get(), name, content, rel);
  if (::fsync(dir.get()) != 0) fail_errno("cannot flush directory", errno);
}

}  // namespace sq
