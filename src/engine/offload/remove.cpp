#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "core/fs.hpp"
#include "engine/offload/internal.hpp"
#include "store/files.hpp"

namespace sq::engine::offload_detail {

namespace {

RemoveResult drift(std::string what) { return {RemoveResult::Kind::drift, std::move(what)}; }

bool same_object(const struct stat& a, const struct stat& b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; }

std::optional<Digest> hash_handle(int fd, std::vector<char>& buf) {
  Hasher h;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return h.finalize();
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
}

}  // namespace

RemoveResult verify_and_remove(int root, const Candidate& c, std::vector<char>& buf, const UnlinkHook& hook) {
  auto [folder, name] = store::split_path(c.gate.path);
  int pfd = folder.empty() ? ::dup(root) : open_beneath(root, folder, O_RDONLY | O_DIRECTORY);
  if (pfd < 0) return drift(fmt::format("parent folder unusable ({}) — a symlink or a file in the way?",
                                        std::strerror(folder.empty() ? errno : -pfd)));
  Fd parent(pfd);
  struct stat before {}, opened {}, after {};
  if (::fstatat(pfd, name.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) return drift("missing on disk");
  if (!S_ISREG(before.st_mode)) return drift("no longer a regular file (a symlink or something else is there)");
  Fd file(::openat(pfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!file || ::fstat(file.get(), &opened) != 0 || !same_object(before, opened))
    return drift("replaced between check and open");
  if (opened.st_size != c.size || mtime_ns_of(opened) != c.mtime_ns)
    return drift(fmt::format("size/mtime differ from the index ({} bytes now, {} indexed)", opened.st_size, c.size));
  auto h = hash_handle(file.get(), buf);
  if (!h) return {RemoveResult::Kind::error, std::strerror(errno)};
  if (*h != c.hash) return drift("content differs from the index (BLAKE3 mismatch)");
  if (::fstatat(pfd, name.c_str(), &after, AT_SYMLINK_NOFOLLOW) != 0 || !same_object(before, after) ||
      after.st_size != opened.st_size || mtime_ns_of(after) != mtime_ns_of(opened))
    return drift("changed during verification");
  if (hook) hook(false);
  if (::unlinkat(pfd, name.c_str(), 0) != 0) return {RemoveResult::Kind::error, std::strerror(errno)};
  if (hook) hook(true);
  return {};
}

}  // namespace sq::engine::offload_detail
