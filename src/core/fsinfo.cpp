#include "core/fsinfo.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "core/error.hpp"
#include "core/real_path.hpp"

namespace sq {

namespace {

struct Magic {
  std::int64_t value;
  const char* name;
  bool is_volatile;
};

// linux/magic.h, spelled out: the header is not part of every libc's
// install, and only these are ever shown or judged.
constexpr Magic kMagics[] = {
    {0x01021994, "tmpfs", true},      {0x858458f6, "ramfs", true},     {0x958458f6, "hugetlbfs", true},
    {0x9fa0, "proc", true},           {0x62656572, "sysfs", true},     {0xEF53, "ext2/3/4", false},
    {0x58465342, "xfs", false},       {0x9123683E, "btrfs", false},    {0x2fc12fc1, "zfs", false},
    {0xF2F52010, "f2fs", false},      {0xca451a4e, "bcachefs", false}, {0x4d44, "vfat", false},
    {0x2011BAB0, "exfat", false},     {0x5346544e, "ntfs", false},     {0x65735546, "fuse", false},
    {0x6969, "nfs", false},           {0xFF534D42, "cifs", false},     {0xFE534D42, "smb2", false},
    {0x794c7630, "overlay", false},   {0x01021997, "9p", false},       {0x482b, "hfsplus", false},
    {0x73717368, "squashfs", false},  {0x9660, "iso9660", false},      {0x15013346, "udf", false},
};

const Magic* magic_of(std::int64_t value) {
  for (const auto& m : kMagics)
    if (m.value == value) return &m;
  return nullptr;
}

}  // namespace

std::string fs_type_name(std::int64_t magic) {
  const Magic* m = magic_of(magic);
  return m ? m->name : "";
}

bool volatile_fs_type(std::int64_t magic, const std::string& fstype, const std::string& source) {
  if (const Magic* m = magic_of(magic); m && m->is_volatile) return true;
  for (const char* name : {"tmpfs", "ramfs", "devtmpfs", "hugetlbfs", "rootfs"})
    if (fstype == name) return true;
  // A zram disk formatted ext4 still says ext4; only its device betrays it.
  return source.starts_with("/dev/zram");
}

FsInfo fs_info(const std::filesystem::path& path) {
  FsInfo info;
  std::error_code ec;
  std::filesystem::path asked = std::filesystem::absolute(path, ec).lexically_normal();
  if (!asked.has_filename() && asked.has_relative_path()) asked = asked.parent_path();
  info.probed = nearest_existing(asked);
  info.exists = info.probed == asked;
  struct statfs sf {};
  struct stat st {};
  if (::statfs(info.probed.c_str(), &sf) != 0 || ::stat(info.probed.c_str(), &st) != 0)
    fail(ErrorKind::io, fmt::format("{} — check that the path is reachable",
                                    errno_message("cannot examine the filesystem of " + info.probed.string(), errno)));
  auto magic = static_cast<std::int64_t>(static_cast<std::uint32_t>(sf.f_type));
  info.device = static_cast<std::uint64_t>(st.st_dev);
  info.free_bytes = static_cast<std::int64_t>(sf.f_bavail) * static_cast<std::int64_t>(sf.f_bsize);
  auto mounts = read_mounts();
  char buf[PATH_MAX];
  const MountEntry* m = ::realpath(info.probed.c_str(), buf) ? mount_of(mounts, buf) : nullptr;
  std::string fstype = m ? m->fstype : "", source = m ? m->source : "";
  info.type = !fstype.empty() ? fstype : !fs_type_name(magic).empty() ? fs_type_name(magic)
                                                                      : fmt::format("0x{:x}", magic);
  info.is_volatile = volatile_fs_type(magic, fstype, source);
  return info;
}

bool is_volatile_fs(const std::filesystem::path& path) {
  try {
    return fs_info(path).is_volatile;
  } catch (const std::exception&) {
    return true;
  }
}

bool same_filesystem(const FsInfo& a, const FsInfo& b) { return a.device == b.device; }

}  // namespace sq
