#pragma once
// Where a path really is. Config strings can hide that two places are one
// (a symlink, a bind mount, a second mount of the same disk), so layout
// rules that must hold on disk compare real locations: symlinks resolved
// and, through /proc/self/mountinfo, the place inside its filesystem that
// a bind mount shows.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sq {

// One line of /proc/self/mountinfo (proc(5)), escapes decoded.
struct MountEntry {
  std::string device;                // "major:minor"
  std::filesystem::path root;        // what of that filesystem is shown here ("/" unless a bind mount)
  std::filesystem::path mount_point;
  std::string fstype;                // "ext4", "tmpfs", "fuse.sshfs" …
  std::string source;                // "/dev/sda1", "tmpfs" …
};
// Lines that do not parse are skipped: a partial table only weakens the
// bind-mount rule, which the other rules back up.
std::vector<MountEntry> parse_mountinfo(std::string_view text);
// This process's mount table; empty when /proc is not there.
std::vector<MountEntry> read_mounts();
// The mount holding `real` (absolute, symlinks resolved): the longest mount
// point at or above it, the last listed when one is mounted over another.
const MountEntry* mount_of(const std::vector<MountEntry>& mounts, const std::filesystem::path& real);

// `path` or its nearest ancestor that exists (a root not created yet lands
// on the filesystem of the directory it will be created in).
std::filesystem::path nearest_existing(const std::filesystem::path& path);

struct RealLocation {
  std::filesystem::path real;   // the nearest existing ancestor through realpath, plus the rest as written
  std::string device;           // "major:minor" of its filesystem; "" when the mount table is unknown
  std::filesystem::path in_fs;  // where `real` lies inside that filesystem, through any bind mount
};
RealLocation locate(const std::filesystem::path& path, const std::vector<MountEntry>& mounts);

// Component-wise: `inner` is `outer` or lies beneath it (lexically normal
// absolute paths; "/a/bc" is not inside "/a/b").
bool path_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

// True when `inner` is `outer` or lies beneath it on disk: by real path, by
// place inside the same filesystem (bind mounts), or because some existing
// ancestor of `inner` is `outer`'s directory (same st_dev and st_ino).
bool contains_real(const RealLocation& outer, const RealLocation& inner);

}  // namespace sq
