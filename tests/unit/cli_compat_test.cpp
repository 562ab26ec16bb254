// Issue 13 §3 through the real binary: the reference's `sync --shallow`,
// `restore --shallow`, `runs --limit 0` and `hooks --limit 0`, and an
// offload that requires a target only a peer reaches.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "loop_util.hpp"
#include "store/hook_runs.hpp"
#include "store/store.hpp"
#include "store/volumes.hpp"

using namespace sq::test;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

sq::store::Store open_existing(const fs::path& db) {
  sq::store::StoreOptions o;
  o.create = false;
  return sq::store::Store::open(db, o);
}

}  // namespace

// A native mirror reads every copy back: there is no checksum comparison
// to switch off, so the reference's flag is refused for it, and recorded.
TEST(SyncShallow, IsRefusedOnANativeMirrorAndWritesNothing) {
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  auto r = sb.expect(1, {"sync", "photos", "--shallow", "--init"});
  ASSERT_EQ(r.error_lines().size(), 1u) << r.err;
  EXPECT_THAT(r.error_lines()[0], HasSubstr("--shallow is refused for destination \"usb\""));
  EXPECT_THAT(r.error_lines()[0], HasSubstr("sync without --shallow"));
  EXPECT_FALSE(fs::exists(sb.vdest())) << "nothing written";
  auto runs = sb.runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].at("kind"), "sync");
  EXPECT_EQ(runs[1].at("status"), "refused");
  sb.ok({"sync", "photos", "--init"});
}

// Accepted as in the reference; every file is still checked on the way
// down, so a damaged copy is refused with or without it.
TEST(RestoreShallow, IsAcceptedAndStillChecksEveryFile) {
  LoopSandbox sb;
  sb.put("a.txt", "alpha");
  sb.put("b.txt", "bravo");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos", "--init"});
  write_file(sb.vdest() / "b.txt", "BRAVO");  // same size, other bytes
  auto out = sb.root() / "out";
  auto r = sb.expect(1, {"restore", "photos", "--shallow", "--to", out.string(), "--json"});
  EXPECT_THAT(r.err, HasSubstr("note: --shallow changes nothing here"));
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("restored"), 1);
  EXPECT_EQ(j.at("mismatched"), 1);
  EXPECT_EQ(read_file(out / "a.txt"), "alpha");
  EXPECT_FALSE(fs::exists(out / "b.txt")) << "bytes that fail the check never reach the path";
}

TEST(RunsLimit, ZeroMeansNoLimit) {
  CliSandbox sb;
  sb.write_config();
  sb.put("a.txt", "alpha");
  for (int i = 0; i < 22; ++i) ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  auto count = [&](const std::vector<std::string>& args) {
    auto r = sb.run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out).size();
  };
  EXPECT_EQ(count({"runs", "--json"}), 20u);
  EXPECT_EQ(count({"runs", "--json", "--limit", "0"}), 22u);
  EXPECT_EQ(count({"runs", "--json", "--limit", "0", "--volume", "photos"}), 22u);
  EXPECT_EQ(count({"runs", "--json", "--limit", "3"}), 3u);
  auto table = sb.run({"runs", "--limit", "0"});
  EXPECT_EQ(table.status, 0);
  EXPECT_EQ(std::count(table.out.begin(), table.out.end(), '\n'), 23) << table.out;  // header + 22
}

TEST(HooksLimit, ZeroMeansNoLimit) {
  CliSandbox sb;
  sb.write_config("[volumes.photos.hook]\ncommand = [\"true\"]\n");
  sb.put("a.txt", "alpha");
  ASSERT_EQ(sb.run({"index", "photos"}).status, 0);
  {
    auto st = open_existing(sb.db_path());
    auto v = sq::store::find_volume(st.db(), "photos");
    ASSERT_TRUE(v);
    for (int i = 0; i < 23; ++i) {
      auto id = sq::store::begin_hook_run(st.db(), {v->id, "interval", std::nullopt, false});
      sq::store::finish_hook_run(st.db(), id, "success", 0, "");
    }
  }
  auto count = [&](const std::vector<std::string>& args) {
    auto r = sb.run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out).size();
  };
  EXPECT_EQ(count({"hooks", "--json"}), 20u);
  EXPECT_EQ(count({"hooks", "--json", "--limit", "0"}), 23u);
  EXPECT_EQ(count({"hooks", "--json", "--limit", "5"}), 5u);
}

// The reference lets offload_requires name a target only a peer pushes to.
// With no evidence for it (and no way to look at it from here), offload
// fails closed: nothing is deleted, and the refusal names the target.
TEST(ExternalTarget, OffloadRefusesWithoutItsEvidenceAndDeletesNothing) {
  LoopSandbox sb;
  sb.write_config_raw("[volumes.photos]\npath = \"" + sb.volume_dir().string() +
                      "\"\nsync_to = [\"usb\"]\noffload_requires = [\"usb\", \"cloudbox\"]\n\n[destinations.usb]\n"
                      "type = \"local\"\nroot = \"" + sb.dest_root().string() + "\"\n");
  auto check = sb.run({"config", "check"});
  EXPECT_THAT(check.out, HasSubstr("cloudbox  external target of volume \"photos\""));
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  sb.ok({"sync", "photos", "--init"});
  auto off = sb.json({"offload", "photos", "."}, 1);
  EXPECT_EQ(off.at("offloaded"), 0);
  bool named = false;
  for (const auto& g : off.at("refusals")) named = named || g.at("target") == "cloudbox";
  EXPECT_TRUE(named) << off.dump();
  EXPECT_EQ(read_file(sb.vol("a.txt")), "alpha");
  EXPECT_EQ(sb.status_of("a.txt"), "present");
}
