#include "engine/walk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sq::engine {

DirListing list_directory(int root, const std::string& rel, bool stat_files) {
  DirListing out;
  int fd = rel.empty() ? ::openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                       : open_beneath(root, rel, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    out.error = std::strerror(rel.empty() ? errno : -fd);
    return out;
  }
  if (int kept = ::fcntl(fd, F_DUPFD_CLOEXEC, 0); kept >= 0) out.fd = std::make_shared<const Fd>(kept);
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    out.error = std::strerror(errno);
    ::close(fd);
    return out;
  }
  for (;;) {
    errno = 0;  // readdir signals an error only through errno: clear it before every call
    dirent* e = ::readdir(dir);
    if (!e) break;
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    DirEntry entry;
    entry.name = std::move(name);
    if (!stat_files && e->d_type == DT_REG) {
      entry.type = DirEntry::Type::file;
      entry.stat_known = false;
      out.entries.push_back(std::move(entry));
      continue;
    }
    struct stat st {};
    if (::fstatat(fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      out.errors.emplace_back(entry.name, std::strerror(errno));
      continue;
    }
    entry.stat = to_file_stat(st);
    entry.type = S_ISREG(st.st_mode)   ? DirEntry::Type::file
                 : S_ISDIR(st.st_mode) ? DirEntry::Type::directory
                                       : DirEntry::Type::special;
    out.entries.push_back(std::move(entry));
  }
  if (errno != 0) out.error = std::strerror(errno);
  ::closedir(dir);
  std::sort(out.entries.begin(), out.entries.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

}  // namespace sq::engine
