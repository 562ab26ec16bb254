// `squirrel backup`: index, then sync to every target in sync_to, one
// summary, exit codes like status — through the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using sq::test::LoopSandbox;

TEST(BackupCli, TheFirstBackupNeedsInitThenEveryBackupIndexesSyncsAndIsGreen) {
  LoopSandbox sb;
  sq::test::write_file(sb.vol("a.txt"), "alpha");
  auto first = sb.expect(2, {"backup"});
  EXPECT_THAT(first.out, HasSubstr("photos → usb: refused:")) << first.out;
  EXPECT_THAT(first.err, HasSubstr("`squirrel backup --init`")) << first.err;
  EXPECT_FALSE(fs::exists(sb.vdest() / "a.txt")) << "nothing is created without --init";

  auto init = sb.ok({"backup", "--init"});
  EXPECT_THAT(init.out, HasSubstr("backup: green")) << init.out;
  EXPECT_TRUE(fs::exists(sb.vdest() / "a.txt"));

  sq::test::write_file(sb.vol("sub/b.txt"), "bravo");
  auto next = sb.json({"backup"});
  EXPECT_EQ(next.value("light", std::string()), "green") << next.dump(2);
  EXPECT_EQ(next["volumes"][0]["index_status"], "success") << next.dump(2);
  EXPECT_EQ(next["volumes"][0]["syncs"][0].value("written", -1), 1) << next.dump(2);
  EXPECT_TRUE(fs::exists(sb.vdest() / "sub" / "b.txt"));
  sb.ok({"status"});
}

TEST(BackupCli, AVolumeWhoseIndexIsRefusedIsNotSyncedAndTheBackupIsRed) {
  LoopSandbox sb;
  sq::test::write_file(sb.vol("a.txt"), "alpha");
  sb.ok({"backup", "--init"});
  auto syncs = [&] {
    auto runs = sb.runs();
    return std::count_if(runs.begin(), runs.end(), [](const auto& r) { return r.at("kind") == "sync"; });
  };
  auto syncs_before = syncs();
  fs::rename(sb.volume_dir(), sb.root() / "unmounted");
  auto r = sb.expect(2, {"backup"});
  EXPECT_THAT(r.out, HasSubstr("photos: index refused:")) << r.out;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("photos → usb"))) << "no sync after a refused index";
  EXPECT_EQ(syncs(), syncs_before);
  EXPECT_THAT(r.out, HasSubstr("backup: red"));
}

TEST(BackupCli, AnUnknownVolumeIsAnErrorAndChangesNothing) {
  LoopSandbox sb;
  auto r = sb.expect(1, {"backup", "nosuch"});
  EXPECT_THAT(r.err, HasSubstr("unknown volume \"nosuch\"")) << r.err;
  EXPECT_FALSE(fs::exists(sb.db_path())) << "no database created for a refused command";
}

}  // namespace
