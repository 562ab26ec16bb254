#include "core/private_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/error.hpp"

namespace sq {

namespace fs = std::filesystem;

Fd create_private_file(const fs::path& path, std::error_code& ec) {
  ec.clear();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) {
    if (errno != EEXIST) ec = {errno, std::generic_category()};
    return Fd();
  }
  Fd file(fd);
  // The umask can only have taken bits away (even the owner's); this puts
  // exactly 0600 back before anything is written.
  if (::fchmod(file.get(), kPrivateFileMode) != 0) {
    ec = {errno, std::generic_category()};
    return Fd();
  }
  return file;
}

Fd create_private_file(const fs::path& path) {
  std::error_code ec;
  Fd file = create_private_file(path, ec);
  if (ec) fail_errno(fmt::format("cannot create {}", path.string()), ec.value());
  return file;
}

namespace {

std::error_code errno_code() { return {errno, std::generic_category()}; }

// The directories of `dir` that do not exist yet, outermost first.
std::vector<fs::path> missing_directories(fs::path dir, std::error_code& ec) {
  std::vector<fs::path> missing;
  if (!dir.has_filename() && dir.has_relative_path()) dir = dir.parent_path();
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) ec = std::make_error_code(std::errc::not_a_directory);
      break;
    }
    if (errno != ENOENT) {
      ec = errno_code();
      break;
    }
    missing.insert(missing.begin(), p);
    if (p == p.parent_path()) break;
  }
  return missing;
}

}  // namespace

void create_private_directories(const fs::path& dir, std::error_code& ec) {
  ec.clear();
  auto missing = missing_directories(dir, ec);
  if (ec) return;
  for (const auto& p : missing) {
    if (::mkdir(p.c_str(), kPrivateDirMode) != 0) {
      if (errno == EEXIST) continue;  // made meanwhile by another process, with a mode of its own
      ec = errno_code();
      return;
    }
    // As for files: the umask may have taken the owner's bits, never added any.
    if (::chmod(p.c_str(), kPrivateDirMode) != 0) {
      ec = errno_code();
      return;
    }
  }
}

}  // namespace sq
