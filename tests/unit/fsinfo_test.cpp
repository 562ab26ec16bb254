// Filesystem facts and real-path containment: what a memory filesystem
// is, where a path really is through symlinks and bind mounts, and which
// places contain each other on disk.
#include <gtest/gtest.h>
#include <sys/statfs.h>

#include <filesystem>

#include "core/fsinfo.hpp"
#include "core/real_path.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::TempDir;

constexpr std::int64_t kTmpfsMagic = 0x01021994;

// /dev/shm is a tmpfs on every Linux this project runs on (and on this CI
// machine); a test that needs a memory filesystem uses it, no mount needed.
void require_dev_shm_tmpfs() {
  struct statfs sf {};
  ASSERT_EQ(::statfs("/dev/shm", &sf), 0) << "/dev/shm is needed as a memory filesystem";
  ASSERT_EQ(static_cast<std::uint32_t>(sf.f_type), kTmpfsMagic) << "/dev/shm is not a tmpfs here";
}

TEST(FsInfo, DevShmIsVolatileEvenBelowAPathNotCreatedYet) {
  require_dev_shm_tmpfs();
  EXPECT_TRUE(sq::is_volatile_fs("/dev/shm"));
  auto info = sq::fs_info("/dev/shm/squirrel-no-such-dir/root");
  EXPECT_TRUE(info.is_volatile);
  EXPECT_EQ(info.type, "tmpfs");
  EXPECT_FALSE(info.exists);
  EXPECT_EQ(info.probed, fs::path("/dev/shm"));
}

TEST(FsInfo, ADiskIsNotVolatileAndTwoFoldersOnItShareADevice) {
  TempDir dir;
  fs::create_directories(dir / "a");
  ASSERT_FALSE(sq::fs_info(dir.path()).is_volatile) << "the temp dir must be on a disk for this test";
  auto a = sq::fs_info(dir / "a"), b = sq::fs_info(dir / "b/not/yet");
  EXPECT_TRUE(a.exists);
  EXPECT_FALSE(b.exists);
  EXPECT_EQ(b.probed, dir.path());
  EXPECT_FALSE(a.type.empty());
  EXPECT_TRUE(sq::same_filesystem(a, b));
  EXPECT_GE(a.free_bytes, 0);
}

TEST(FsInfo, OnTmpfsAndOnADiskAreDifferentFilesystems) {
  require_dev_shm_tmpfs();
  TempDir dir;
  EXPECT_FALSE(sq::same_filesystem(sq::fs_info(dir.path()), sq::fs_info("/dev/shm")));
}

TEST(FsInfo, MemoryFilesystemsByMagicByTypeAndByDevice) {
  EXPECT_TRUE(sq::volatile_fs_type(kTmpfsMagic, "", ""));
  EXPECT_TRUE(sq::volatile_fs_type(0x858458f6, "", ""));  // ramfs
  EXPECT_TRUE(sq::volatile_fs_type(0, "ramfs", "none"));
  EXPECT_TRUE(sq::volatile_fs_type(0xEF53, "ext4", "/dev/zram0"));  // a zram disk formatted ext4
  EXPECT_FALSE(sq::volatile_fs_type(0xEF53, "ext4", "/dev/sda1"));
  EXPECT_FALSE(sq::volatile_fs_type(0x6969, "nfs4", "nas:/export"));
  EXPECT_EQ(sq::fs_type_name(kTmpfsMagic), "tmpfs");
  EXPECT_EQ(sq::fs_type_name(0x12345), "");
}

// ---- the mount table ---------------------------------------------------------------

const char* kMountinfo =
    "21 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "22 21 0:22 / /dev/shm rw - tmpfs tmpfs rw\n"
    "23 21 8:1 /home/u/photos/sub /mnt/bound rw - ext4 /dev/sda1 rw\n"
    "24 21 8:17 / /media/my\\040disk rw shared:7 - vfat /dev/sdb1 rw\n"
    "not a mountinfo line\n"
    "25 21 0:40 / /mnt/bound rw - tmpfs tmpfs rw\n";

TEST(MountTable, ParsesFieldsEscapesAndOptionalFields) {
  auto mounts = sq::parse_mountinfo(kMountinfo);
  ASSERT_EQ(mounts.size(), 5u);
  EXPECT_EQ(mounts[2].device, "8:1");
  EXPECT_EQ(mounts[2].root, fs::path("/home/u/photos/sub"));
  EXPECT_EQ(mounts[2].mount_point, fs::path("/mnt/bound"));
  EXPECT_EQ(mounts[3].mount_point, fs::path("/media/my disk"));
  EXPECT_EQ(mounts[3].fstype, "vfat");
  EXPECT_EQ(mounts[3].source, "/dev/sdb1");
}

TEST(MountTable, TheDeepestMountWinsAndTheLastOfTwoOnOnePoint) {
  auto mounts = sq::parse_mountinfo(kMountinfo);
  EXPECT_EQ(sq::mount_of(mounts, "/home/u")->device, "8:1");
  EXPECT_EQ(sq::mount_of(mounts, "/dev/shm/x")->fstype, "tmpfs");
  EXPECT_EQ(sq::mount_of(mounts, "/dev/shmx")->device, "8:1");
  EXPECT_EQ(sq::mount_of(mounts, "/mnt/bound/a")->device, "0:40");  // mounted over the bind mount
}

TEST(RealPath, PathWithinComparesWholeComponents) {
  EXPECT_TRUE(sq::path_within("/a/b", "/a/b"));
  EXPECT_TRUE(sq::path_within("/a/b/c", "/a/b/"));
  EXPECT_TRUE(sq::path_within("/a", "/"));
  EXPECT_FALSE(sq::path_within("/a/bc", "/a/b"));
  EXPECT_FALSE(sq::path_within("/a", "/a/b"));
}

// A bind mount shows a folder of a volume somewhere else; config strings
// and real paths cannot tell, the place inside the filesystem can.
TEST(RealPath, ABindMountOfAFolderInsideAVolumeIsInsideIt) {
  auto mounts = sq::parse_mountinfo(
      "21 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "23 21 8:1 /squirrel-test-nowhere/photos/sub /squirrel-test-nowhere/mnt/bound rw - ext4 /dev/sda1 rw\n");
  auto volume = sq::locate("/squirrel-test-nowhere/photos", mounts);
  auto dest = sq::locate("/squirrel-test-nowhere/mnt/bound/backup", mounts);
  EXPECT_EQ(dest.device, "8:1");
  EXPECT_EQ(dest.in_fs, fs::path("/squirrel-test-nowhere/photos/sub/backup"));
  EXPECT_TRUE(sq::contains_real(volume, dest));
  EXPECT_FALSE(sq::contains_real(dest, volume));
  EXPECT_FALSE(sq::contains_real(volume, sq::locate("/squirrel-test-nowhere/mnt/other", mounts)));
}

TEST(RealPath, ASymlinkIntoAFolderIsInsideIt) {
  TempDir dir;
  fs::create_directories(dir / "vol/photos");
  fs::create_directory_symlink(dir / "vol/photos", dir / "link");
  auto mounts = sq::read_mounts();
  auto volume = sq::locate(dir / "vol/photos", mounts);
  auto dest = sq::locate(dir / "link/backup/not-yet", mounts);
  EXPECT_EQ(dest.real, fs::canonical(dir / "vol/photos") / "backup/not-yet");
  EXPECT_TRUE(sq::contains_real(volume, dest));
  EXPECT_FALSE(sq::contains_real(volume, sq::locate(dir / "vol", mounts)));
  EXPECT_TRUE(sq::contains_real(sq::locate(dir / "vol", mounts), volume));
}

// Without a mount table the ancestors' identities still catch a path that
// reaches the folder another way.
TEST(RealPath, AncestorIdentityCatchesContainmentWithoutAMountTable) {
  TempDir dir;
  fs::create_directories(dir / "vol/photos/inner");
  sq::RealLocation outer{fs::canonical(dir / "vol/photos"), "", ""};
  sq::RealLocation inner{fs::canonical(dir.path()) / "elsewhere", "", ""};
  EXPECT_FALSE(sq::contains_real(outer, inner));
  inner.real = fs::path("/proc/self/root") / fs::canonical(dir / "vol/photos/inner").relative_path();
  EXPECT_TRUE(sq::contains_real(outer, inner));
}

}  // namespace
