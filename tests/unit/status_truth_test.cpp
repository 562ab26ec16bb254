// `status` is never green while something is wrong (issue 14 §3): each
// case a user met — the volume's folder gone, its marker gone, files
// edited, added or deleted since the last index, a copy lost and the alarm
// acknowledged — turns it amber or red with the reason and the next step.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using sq::test::LoopSandbox;

class StatusTruth : public ::testing::Test {
 protected:
  LoopSandbox sb;

  void SetUp() override {
    sq::test::write_file(sb.vol("a.txt"), "alpha");
    sq::test::write_file(sb.vol("sub/b.txt"), "bravo");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
    sb.ok({"verify", "usb", "--full"});
    auto green = sb.ok({"status"});
    ASSERT_THAT(green.out, HasSubstr("overall: green")) << "the starting point must be green";
  }

  // status' exit code (1 amber, 2 red) and its whole output.
  std::pair<int, std::string> status() const {
    auto r = sb.run({"status"});
    return {r.status, r.out + r.err};
  }
};

TEST_F(StatusTruth, AVolumeFolderThatMovedAwayIsRed) {
  fs::rename(sb.volume_dir(), sb.root() / "moved");
  auto [code, out] = status();
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr(sb.volume_dir().string())) << "the reason names the missing folder";
  EXPECT_THAT(out, HasSubstr("offloadable now: 0 B")) << out;
}

TEST_F(StatusTruth, ADeletedVolumeMarkerIsRed) {
  fs::remove(sb.vol(".squirrel-volume"));
  auto [code, out] = status();
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("marker")) << out;
}

TEST_F(StatusTruth, AVolumeThatAnotherDatabaseOwnsIsRedHereToo) {
  auto other = sb.root() / "db" / "other.db";
  auto r = sb.run_bare({"--config", sb.config_path().string(), "--db", other.string(), "status"});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("belongs to another index database")) << r.out;
}

TEST_F(StatusTruth, AFileEditedSinceTheLastIndexIsAmberUntilIndexed) {
  sq::test::write_file(sb.vol("sub/b.txt"), "bravo, edited");
  auto [code, out] = status();
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("1 file(s) added, removed or changed since the last index (first: sub/b.txt)"));
  EXPECT_THAT(out, HasSubstr("squirrel index photos"));
  sb.ok({"index", "photos"});
  EXPECT_THAT(status().second, ::testing::Not(HasSubstr("since the last index")));
}

TEST_F(StatusTruth, AFileAddedInANewFolderIsAmber) {
  sq::test::write_file(sb.vol("new/deeper/c.txt"), "charlie");
  auto [code, out] = status();
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("(first: new/deeper/c.txt)"));
}

TEST_F(StatusTruth, AFileDeletedSinceTheLastIndexIsAmber) {
  fs::remove(sb.vol("a.txt"));
  auto [code, out] = status();
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("(first: a.txt)"));
  auto drift = sb.json({"status"}, 1)["volumes"][0]["drift"];
  EXPECT_EQ(drift.value("changed", -1), 1) << drift.dump();
  EXPECT_EQ(drift.value("first", std::string()), "a.txt") << drift.dump();
  EXPECT_TRUE(drift.value("complete", false)) << drift.dump();
}

TEST_F(StatusTruth, AnEmptyNewFolderIsNoChange) {
  fs::create_directories(sb.vol("empty/inside"));
  auto [code, out] = status();
  EXPECT_EQ(code, 0) << out;
}

TEST_F(StatusTruth, AcknowledgingALostCopyNeverTurnsItGreen) {
  fs::remove(sb.vdest() / "sub" / "b.txt");
  sb.expect(1, {"verify", "usb", "--full"});
  EXPECT_EQ(status().first, 2) << "a latched alarm is red";
  sb.ok({"verify", "ack", "usb"});
  auto [code, out] = status();
  EXPECT_NE(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("1 file(s) lost their copy at usb"));
  EXPECT_THAT(out, HasSubstr("squirrel sync photos`, then `squirrel verify usb"));
  sb.ok({"sync", "photos"});
  sb.ok({"verify", "usb"});
  EXPECT_EQ(status().first, 0) << status().second;
}

}  // namespace

namespace {

// Before the first sync the hint is the command that works: a destination
// that does not hold the volume yet needs --init. Once it holds it (here:
// another database's sync put it there), the hint drops --init.
TEST(StatusHints, BeforeTheFirstSyncTheHintNamesInitUnlessTheDestinationHoldsTheVolume) {
  sq::test::LoopSandbox sb;
  sq::test::write_file(sb.vol("a.txt"), "alpha");
  sb.ok({"index", "photos"});
  auto first = sb.run({"status"});
  EXPECT_THAT(first.out, ::testing::HasSubstr("run `squirrel sync photos --to usb --init`")) << first.out;
  sq::test::write_file(sb.vdest() / ".squirrel-volume", "volume = \"photos\"\n");
  auto held = sb.run({"status"});
  EXPECT_THAT(held.out, ::testing::HasSubstr("run `squirrel sync photos --to usb`")) << held.out;
  EXPECT_THAT(held.out, ::testing::Not(::testing::HasSubstr("--init"))) << held.out;
}

}  // namespace
