#pragma once
// Root-confined file access. Every name is resolved beneath an open root
// directory without following symlinks (openat2 RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk of each component where the
// kernel lacks openat2), so a hostile tree cannot redirect reads or writes.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace sq {

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Opens a directory to act as a root. Symlinks in `path` itself are allowed
// (the user named it), but the final directory must be a directory.
Fd open_root(const std::filesystem::path& path);

// Opens `rel` ('/'-separated, no "..", not absolute) beneath `root`.
// Returns -errno on failure instead of throwing, because per-file failures
// are routine during a walk.
int open_beneath(int root, const std::string& rel, int flags, mode_t mode = 0);

// True when `rel` is a clean relative path: no empty, "." or ".."
// components, no leading '/', no NUL.
bool is_clean_relative(const std::string& rel);

struct FileStat {
  std::int64_t size = 0, mtime_ns = 0, inode = 0, dev = 0;
  mode_t mode = 0;
};
FileStat to_file_stat(const struct stat& st);
std::int64_t mtime_ns_of(const struct stat& st);

// Reads a whole small file beneath root; nullopt when it does not exist,
// throws on any other failure (an unreadable marker must never look absent).
std::optional<std::string> read_small_file(int root, const std::string& rel, std::size_t max_bytes = 1 << 16);
// Creates `rel` exclusively with `content`, flushing file and directory;
// fails with EEXIST when anything is already there.
void create_file_exclusive(int root, const std::string& rel, const std::string& content);

}  // namespace sq
