// Offload looks at the world before it deletes (issue 12 §1): each test is a
// way a hostile probe lost data while every record said the copy was fine —
// a copy deleted or byte-flipped after the last verify, the destination
// disk unmounted, a latched alarm, a destination in memory — and checks by
// what is on disk that no local file went, and that the refusal names its
// cause and what to do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/vfs.h>

#include <linux/magic.h>

#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using sq::test::read_file;
using sq::test::rewrite_same_size_and_mtime;
using sq::test::user_files;
using ::testing::HasSubstr;

// Causes of the refusal groups, by target.
std::map<std::string, std::int64_t> causes(const nlohmann::json& report) {
  std::map<std::string, std::int64_t> out;
  for (const auto& g : report.at("refusals")) out[g.at("cause").get<std::string>()] += g.at("files").get<std::int64_t>();
  return out;
}

std::string next_for(const nlohmann::json& report, const std::string& cause) {
  for (const auto& g : report.at("refusals"))
    if (g.at("cause") == cause) return g.at("next").get<std::string>();
  return "";
}

class OffloadWorld : public ::testing::Test {
 protected:
  LoopSandbox sb;
  std::map<std::string, std::string> before;

  void SetUp() override {
    for (int i = 0; i < 6; ++i) sb.put("f" + std::to_string(i) + ".txt", "file number " + std::to_string(i));
    sb.put("dir/g.txt", "gamma");
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
    before = user_files(sb.volume_dir());
  }

  nlohmann::json offload_all(int want) { return sb.json({"offload", "photos", "."}, want); }

  bool alarm_latched() {
    auto st = sb.json({"status"}, 2);
    return !st.at("alarms").empty();
  }
};

TEST_F(OffloadWorld, ACopyDeletedAfterTheLastVerifyKeepsTheOriginalAndLatchesAnAlarm) {
  fs::remove(sb.vdest() / "f0.txt");
  auto r = offload_all(1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_EQ(causes(r)["copy-missing"], 1) << r.dump(2);
  EXPECT_EQ(causes(r)["alarm-latched"], 6) << "after one finding the target is trusted for nothing: " << r.dump(2);
  EXPECT_THAT(next_for(r, "copy-missing"), HasSubstr("squirrel sync photos --to usb"));
  EXPECT_EQ(user_files(sb.volume_dir()), before) << "no local file may go";
  EXPECT_EQ(sb.status_of("f0.txt"), "present");
  EXPECT_TRUE(alarm_latched());
  // The next sync rewrites the lost copy; a clean full pass clears the alarm.
  sb.ok({"sync"});
  sb.ok({"verify", "usb", "--full"});
  auto again = offload_all(0);
  EXPECT_EQ(again.at("offloaded"), 7) << again.dump(2);
}

TEST_F(OffloadWorld, ACopyByteFlippedWithItsMtimeKeptIsCaughtByTheReHash) {
  rewrite_same_size_and_mtime(sb.vdest() / "f3.txt", "FILE NUMBER 3");
  auto r = sb.json({"offload", "photos", "f3.txt"}, 1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_EQ(causes(r)["copy-damaged"], 1) << r.dump(2);
  EXPECT_EQ(read_file(sb.vol("f3.txt")), "file number 3");
  EXPECT_TRUE(alarm_latched());
}

TEST_F(OffloadWorld, AnUnmountedDiskWithAnEmptyMountPointRefusesEveryFileAndLatchesNothing) {
  fs::rename(sb.dest_root(), sb.root() / "dest" / "usb-away");
  fs::create_directories(sb.dest_root());
  auto r = offload_all(1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_EQ(causes(r)["destination-unreachable"], 7) << r.dump(2);
  EXPECT_THAT(next_for(r, "destination-unreachable"), HasSubstr("mount"));
  EXPECT_EQ(user_files(sb.volume_dir()), before);
  EXPECT_EQ(r.at("destination_refused"), true);
  // An unmounted disk is not a finding about copies: nothing is latched, and
  // with the disk back the offload simply works.
  fs::remove(sb.dest_root());
  fs::rename(sb.root() / "dest" / "usb-away", sb.dest_root());
  EXPECT_EQ(offload_all(0).at("offloaded"), 7);
}

TEST_F(OffloadWorld, AnAlarmFromAPartialVerifyRefusesTheWholeTargetEvenForFilesItDidNotReHash) {
  for (int i = 0; i < 6; ++i) {
    auto name = "f" + std::to_string(i) + ".txt";
    rewrite_same_size_and_mtime(sb.vdest() / name, "FILE NUMBER " + std::to_string(i));
  }
  sb.expect(1, {"verify", "usb"});  // re-hashes about a tenth: finds at least one
  auto r = offload_all(1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_GE(causes(r)["alarm-latched"], 1) << r.dump(2);
  EXPECT_THAT(next_for(r, "alarm-latched"), HasSubstr("verify ack"));
  // Acknowledging the alarm does not make corrupt copies good: each is
  // re-hashed before its original could go.
  sb.ok({"verify", "ack", "usb"});
  auto after_ack = offload_all(1);
  EXPECT_EQ(user_files(sb.volume_dir()), before) << after_ack.dump(2);
}

TEST_F(OffloadWorld, ADryRunReportsADestinationThatIsNotThere) {
  fs::rename(sb.dest_root(), sb.root() / "dest" / "gone");
  auto r = sb.json({"offload", "photos", ".", "--dry-run"}, 1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_EQ(causes(r)["destination-unreachable"], 7);
}

bool dev_shm_is_tmpfs() {
  struct statfs fs {};
  return ::statfs("/dev/shm", &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC;
}

// A copy in memory is not a durable copy: after a reboot it exists nowhere.
TEST(OffloadVolatile, ADestinationOnTmpfsNeverSatisfiesTheGate) {
  ASSERT_TRUE(dev_shm_is_tmpfs()) << "this test needs /dev/shm to be a tmpfs (Debian's default)";
  std::string tmpl = "/dev/shm/squirrel-volatile-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } shm{tmpl};
  LoopSandbox sb;
  sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() +
                      "\"\nsync_to = [\"ram\"]\noffload_requires = [\"ram\"]\n\n[destinations.ram]\ntype = "
                      "\"local\"\nroot = \"" + (shm.p / "ram").string() + "\"\n");
  fs::create_directories(shm.p / "ram");
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "--init", "--allow-volatile"});
  auto r = sb.json({"offload", "photos", "."}, 1);
  EXPECT_EQ(r.at("offloaded"), 0) << r.dump(2);
  EXPECT_EQ(causes(r)["volatile-destination"], 1) << r.dump(2);
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha");
}

}  // namespace
