// Any version back (issue 14 §2): `restore --at <run | time>` brings files
// back as the index recorded them by that run, from live or history
// copies, checked against their BLAKE3; `query --history` says where each
// version's copies are. Through the real binary on real directories.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using sq::test::LoopSandbox;

class RestoreAt : public ::testing::Test {
 protected:
  LoopSandbox sb;
  std::string first_run;  // the run after which a.txt = "one", b.txt = "bee"

  std::string last_run_id() { return std::to_string(sb.runs().back().at("id").get<std::int64_t>()); }

  void SetUp() override {
    sq::test::write_file(sb.vol("a.txt"), "one");
    sq::test::write_file(sb.vol("sub/b.txt"), "bee");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
    first_run = last_run_id();
    sq::test::write_file(sb.vol("a.txt"), "two, longer");
    fs::remove(sb.vol("sub/b.txt"));
    sq::test::write_file(sb.vol("c.txt"), "sea");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "photos"});
  }
};

TEST_F(RestoreAt, ARunIdBringsBackEveryFileAsItWasThenFromHistoryCopies) {
  auto out = sb.root() / "then";
  sb.ok({"restore", "photos", "--at", first_run, "--to", out.string()});
  EXPECT_EQ(sq::test::read_file(out / "a.txt"), "one");
  EXPECT_EQ(sq::test::read_file(out / "sub" / "b.txt"), "bee") << "a file deleted since comes back";
  EXPECT_FALSE(fs::exists(out / "c.txt")) << "a file added since is not part of that version";
}

TEST_F(RestoreAt, InPlaceKeepsTodaysFileAsideAndTheNextIndexSeesTheChange) {
  sb.expect(1, {"restore", "photos", "--at", first_run});  // a.txt is in the way: left alone
  EXPECT_EQ(sq::test::read_file(sb.vol("a.txt")), "two, longer");
  EXPECT_EQ(sq::test::read_file(sb.vol("sub/b.txt")), "bee");
  sb.ok({"restore", "photos", "--at", first_run, "--in-place"});
  EXPECT_EQ(sq::test::read_file(sb.vol("a.txt")), "one");
  EXPECT_EQ(sq::test::read_file(sb.vol("c.txt")), "sea") << "files added since are left alone";
  // Exit 1: the folder of what --in-place moved aside is reported.
  auto index = sb.json({"index", "photos"}, 1);
  EXPECT_EQ(index.value("modified", -1), 1) << "a.txt is the old version now" << index.dump(2);
  EXPECT_EQ(index.value("added", -1), 0) << "sub/b.txt's row came back to present" << index.dump(2);
  EXPECT_EQ(sb.status_of("sub/b.txt"), "present");
}

TEST_F(RestoreAt, ATimeNamesTheLastRunThatBeganByThen) {
  auto out = sb.root() / "now";
  sb.ok({"restore", "photos", "--at", "2099-01-01T00:00:00Z", "--to", out.string()});
  EXPECT_EQ(sq::test::read_file(out / "a.txt"), "two, longer");
  auto before = sb.expect(1, {"restore", "photos", "--at", "2000-01-01T00:00:00Z", "--to", out.string() + "2"});
  EXPECT_THAT(before.err, HasSubstr("no run began by 2000-01-01T00:00:00Z"));
  auto bad = sb.expect(1, {"restore", "photos", "--at", "yesterday"});
  EXPECT_THAT(bad.err, HasSubstr("--at takes a run id"));
  EXPECT_FALSE(fs::exists(out.string() + "2"));
}

TEST_F(RestoreAt, ADamagedHistoryCopyIsNeverWritten) {
  auto hist = sb.vdest() / ".squirrel-history";
  ASSERT_TRUE(fs::exists(hist));
  for (const auto& e : fs::recursive_directory_iterator(hist))
    if (e.is_regular_file() && e.path().filename() == "a.txt") sq::test::write_file(e.path(), "ONE");
  auto out = sb.root() / "then";
  sb.expect(1, {"restore", "photos", "--at", first_run, "--to", out.string()});
  EXPECT_FALSE(fs::exists(out / "a.txt")) << "bytes that fail their BLAKE3 never reach the path";
  EXPECT_EQ(sq::test::read_file(out / "sub" / "b.txt"), "bee");
}

TEST_F(RestoreAt, QueryHistorySaysWhereEachVersionsCopiesAre) {
  auto r = sb.ok({"query", "--history", sb.vol("a.txt").string()});
  EXPECT_THAT(r.out, HasSubstr("COPIES"));
  EXPECT_THAT(r.out, HasSubstr("usb (history run ")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("usb (live)")) << r.out;
  auto j = sb.json({"query", "--history", sb.vol("a.txt").string()});
  ASSERT_EQ(j["history"].size(), 2u) << j.dump(2);
  EXPECT_FALSE(j["history"][0]["copies"][0].value("live", true)) << j.dump(2);
  EXPECT_TRUE(j["history"][1]["copies"][0].value("live", false)) << j.dump(2);
}

TEST_F(RestoreAt, AtAndMissingCannotBeCombined) {
  auto r = sb.expect(1, {"restore", "photos", "--at", first_run, "--missing"});
  EXPECT_THAT(r.err, HasSubstr("--at and --missing cannot be combined"));
}

}  // namespace
