#pragma once
// Facts about the filesystem a path lives on: its type, whether its
// contents survive a reboot, its device and its free space. A copy on a
// memory filesystem (tmpfs, ramfs …) is gone after an unmount or a reboot,
// so it must never count as durable; a copy on the volume's own filesystem
// survives a deleted file but not a dead disk.
#include <cstdint>
#include <filesystem>
#include <string>

namespace sq {

struct FsInfo {
  std::filesystem::path probed;  // the nearest existing path that was examined
  bool exists = false;           // the asked path itself exists (probed is that path)
  std::string type;              // "ext4", "tmpfs" … or "0x<magic>" when unnamed
  bool is_volatile = false;      // contents do not survive a reboot
  std::uint64_t device = 0;      // st_dev of `probed`
  std::int64_t free_bytes = 0;   // available to an unprivileged writer
};

// Answers for `path`, or for its nearest existing ancestor when `path` does
// not exist yet (that is where it would be created). Throws Error(io) only
// when not even an ancestor can be examined.
FsInfo fs_info(const std::filesystem::path& path);

// THE volatility predicate: true when `path` (or, if it does not exist yet,
// its nearest existing ancestor) is on a filesystem whose contents do not
// survive a reboot: tmpfs, ramfs, hugetlbfs, the initramfs rootfs, or a
// zram block device. Fails closed: a path that cannot be examined counts as
// volatile. Cheap (statfs plus one read of /proc/self/mountinfo); never
// throws.
bool is_volatile_fs(const std::filesystem::path& path);

// True when both paths (each as fs_info resolves it) are on one device, so
// one dead disk takes both.
bool same_filesystem(const FsInfo& a, const FsInfo& b);

// Named magic numbers of statfs(2) f_type, for messages; "" when unnamed.
std::string fs_type_name(std::int64_t magic);
// Whether a filesystem of this statfs magic or mount-table type keeps its
// contents only in memory.
bool volatile_fs_type(std::int64_t magic, const std::string& fstype, const std::string& source);

}  // namespace sq
