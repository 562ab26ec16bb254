#pragma once
// One directory listing beneath a root, without following symlinks.
#include <memory>
#include <string>
#include <vector>

#include "core/fs.hpp"

namespace sq::engine {

struct DirEntry {
  std::string name;
  enum class Type { file, directory, special } type = Type::special;
  FileStat stat;
  bool stat_known = true;  // false: a regular file left to the hash worker's fstat
};

struct DirListing {
  std::vector<DirEntry> entries;       // sorted by name, bytewise
  std::vector<std::pair<std::string, std::string>> errors;  // (name, message)
  std::string error;                   // the directory itself could not be read
  // Kept open so the hash workers open each file with one name lookup,
  // relative to the directory the walk actually listed.
  std::shared_ptr<const Fd> fd;
};

// `rel` is "" for the root. With `stat_files` false, entries the directory
// itself reports as regular files are not stat'ed: their `stat` is left
// zero, which matches no recorded file, and the hash workers stat the file
// they open anyway. Everything else is always stat'ed.
DirListing list_directory(int root, const std::string& rel, bool stat_files = true);

inline std::string join_rel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

}  // namespace sq::engine
