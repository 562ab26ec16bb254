// The packed layout end to end on a local disk: small contents bundled into
// packs (large ones become objects), the map and the segment after them,
// rows only once all landed; restore with and without the index; a file
// recovered with zstd, tar and b3sum only; verify finding a damaged pack;
// a crash or power cut at any call leaving no pack row without its bytes.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/offload/offload.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/verify.hpp"
#include "store/artifacts.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
using engine::sync::SyncOptions;
using store::RunStatus;

namespace {

std::string packed_config(const SyncSandbox& sb, const fs::path& root, const std::string& extra = "") {
  return "[volumes.v]\npath = '" + sb.src().string() +
         "'\nsync_to = ['d']\n\n[destinations.d]\ntype = 'local'\nlayout = 'packed'\npack_threshold = '1KiB'\n" +
         extra + "root = '" + root.string() + "'\n\n[backups]\ndir = '" + (sb.state() / "backups").string() + "'\n";
}

std::map<std::string, Digest> user_files(const fs::path& root) {
  auto out = files_of(tree_of(root));
  out.erase(".squirrel-volume");
  return out;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> packs_in(const fs::path& root) {
  auto all = names_in(root / "packs");
  std::erase_if(all, [](const std::string& n) { return n.starts_with("map-"); });
  return all;
}

class Packed : public ::testing::Test {
 protected:
  Packed() {
    sb.set_config(packed_config(sb, sb.dest_root()));
    sb.write("a.txt", "alpha");
    sb.write("dir/same.txt", "alpha");
    sb.write("dir/b.txt", "bravo");
    sb.write("big.bin", std::string(5000, 'B'));
    EXPECT_EQ(sb.index().status, RunStatus::success);
  }
  SyncSandbox sb;
};

TEST_F(Packed, SmallContentsGoIntoOnePackBigOnesBecomeObjectsThenMapThenSegment) {
  auto r = sb.sync_init();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.packs, 1);
  EXPECT_EQ(r.written, 3) << "alpha and bravo packed, big.bin an object";
  EXPECT_EQ(names_in(sb.dest_root() / "objects"), std::vector<std::string>{to_hex(blake3(std::string(5000, 'B')))});
  auto packs = packs_in(sb.dest_root());
  ASSERT_EQ(packs.size(), 1u);
  EXPECT_EQ(to_hex(blake3(read_bytes(sb.dest_root() / "packs" / packs[0]))), packs[0]) << "named by its bytes";
  auto map = read_bytes(sb.dest_root() / "packs" / ("map-" + std::to_string(r.run_id)));
  EXPECT_NE(map.find("\"blake3\":\"" + to_hex(blake3("alpha")) + "\",\"pack\":\"" + packs[0]), std::string::npos)
      << map;
  EXPECT_TRUE(fs::is_regular_file(sb.vdest() / "index" / ("run-" + std::to_string(r.run_id))));
  EXPECT_EQ(store::count_remote_packs(sb.db(), "d"), 1);
  EXPECT_EQ(r.method, "fingerprint-verified");
}

TEST_F(Packed, ADryRunPreviewsThePacks) {
  SyncOptions o;
  o.dry_run = true;
  o.init = true;
  auto r = sb.sync(o);
  EXPECT_EQ(r.pack_contents, 2);
  EXPECT_EQ(r.pack_bytes, 10);
  EXPECT_EQ(r.packs_estimated, 1);
  EXPECT_EQ(r.planned, 3);
  EXPECT_FALSE(fs::exists(sb.dest_root()));
}

TEST_F(Packed, RestoreWithAndWithoutTheIndexReadsTheMembers) {
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto before = user_files(sb.src());
  engine::RestoreOptions o;
  o.to = (sb.tmp() / "out").string();
  EXPECT_EQ(engine::run_restore(sb.cfg(), sb.st(), "v", o).restored, 4);
  EXPECT_EQ(user_files(sb.tmp() / "out"), before);
  sb.close();
  fs::remove_all(sb.state());
  fs::create_directories(sb.state());
  sb.open();
  o.to = (sb.tmp() / "fresh").string();
  EXPECT_EQ(engine::run_restore(sb.cfg(), sb.st(), "v", o).restored, 4);
  EXPECT_EQ(user_files(sb.tmp() / "fresh"), before);
}

// A restore asks for the members in the order they lie in their pack, so
// the pack is streamed once, not once per member.
TEST_F(Packed, ARestoreStreamsEachPackOnceForAllItsMembers) {
  for (int i = 0; i < 30; ++i) sb.write("many/f" + std::to_string(i), "small content " + std::to_string(i));
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  Injected inj;
  engine::RestoreOptions o;
  o.to = (sb.tmp() / "out").string();
  o.files_in_flight = 1;
  o.transport = inj.factory();
  EXPECT_EQ(engine::run_restore(sb.cfg(), sb.st(), "v", o).restored, 34);
  std::int64_t pack_gets = 0;
  for (const auto& c : *inj.log) pack_gets += c.op == "get" && c.a.starts_with("packs/");
  // Once for the 33 members, and once more for dir/same.txt: it shares
  // alpha with a.txt, whose bytes the stream had already passed.
  EXPECT_EQ(pack_gets, 2);
  EXPECT_EQ(user_files(sb.tmp() / "out"), user_files(sb.src()));
}

// The recovery guide, step by step, with stock tools only.
TEST_F(Packed, AFileComesBackWithZstdTarAndB3sumOnly) {
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto root = sb.dest_root().string();
  auto hash = shell("cd '" + root + "' && for f in $(ls v/index | sort -t- -k2 -n); do grep '\"path\":\"dir/b.txt\"' "
                    "v/index/$f; done | tail -n 1 | sed 's/.*\"blake3\":\"\\([0-9a-f]*\\)\".*/\\1/'");
  ASSERT_EQ(hash, to_hex(blake3("bravo")) + "\n");
  hash.pop_back();
  auto pack = shell("cat '" + root + "'/packs/map-* | grep '\"blake3\":\"" + hash +
                    "\"' | head -n 1 | sed 's/.*\"pack\":\"\\([0-9a-f]*\\)\".*/\\1/'");
  ASSERT_EQ(pack.size(), 65u) << pack;
  pack.pop_back();
  auto out = (sb.tmp() / "b.txt").string();
  EXPECT_EQ(shell("zstd -dq < '" + root + "/packs/" + pack + "' | tar -xO " + hash + " > '" + out + "' && b3sum --no-names '" +
                  out + "'"),
            hash + "\n");
  EXPECT_EQ(read_bytes(out), "bravo");
}

TEST_F(Packed, TheSameContentsGiveTheSamePackAtAnotherDestination) {
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto other = sb.tmp() / "other";
  sb.set_config(packed_config(sb, sb.dest_root()) + "\n[destinations.e]\ntype = 'local'\nlayout = 'packed'\n"
                                                    "pack_threshold = '1KiB'\nroot = '" + other.string() + "'\n");
  SyncOptions o;
  o.init = true;
  ASSERT_EQ(sb.sync(o, "e").status, RunStatus::success);
  EXPECT_EQ(packs_in(other), packs_in(sb.dest_root()));
  auto name = packs_in(other).at(0);
  EXPECT_EQ(read_bytes(other / "packs" / name), read_bytes(sb.dest_root() / "packs" / name));
  EXPECT_EQ(store::count_remote_packs(sb.db(), "e"), 1);
}

TEST_F(Packed, AThresholdChangeNeverUploadsAgain) {
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.set_config(packed_config(sb, sb.dest_root()).replace(packed_config(sb, sb.dest_root()).find("1KiB"), 4, "1B"));
  sb.write("c.txt", "charlie");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 1) << "only charlie, now an object";
  EXPECT_EQ(names_in(sb.dest_root() / "objects").size(), 2u);
  EXPECT_EQ(packs_in(sb.dest_root()).size(), 1u);
}

TEST_F(Packed, VerifyFindsADamagedPackAndForgetsIt) {
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  engine::sync::VerifyOptions vo;
  vo.full = true;
  auto clean = engine::sync::run_verify(sb.cfg(), sb.st(), "d", vo);
  EXPECT_TRUE(clean.findings.empty());
  EXPECT_EQ(clean.rehashed, 2) << "one object, one pack";
  auto pack = sb.dest_root() / "packs" / packs_in(sb.dest_root()).at(0);
  fs::permissions(pack, fs::perms::owner_write, fs::perm_options::add);
  auto bytes = read_bytes(pack);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  write_file(pack, bytes);
  auto r = engine::sync::run_verify(sb.cfg(), sb.st(), "d", vo);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].path, "packs/" + packs_in(sb.dest_root()).at(0));
  EXPECT_EQ(r.findings[0].kind, "changed");
  EXPECT_EQ(store::count_remote_packs(sb.db(), "d"), 0);
  engine::RestoreOptions o;
  o.to = (sb.tmp() / "out").string();
  auto restored = engine::run_restore(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(restored.restored, 1) << "only big.bin: the packed contents are no longer recorded there";
}

TEST_F(Packed, VerifyFindsAMapCutShortAndAMapDeleted) {
  auto r = sb.sync_init();
  ASSERT_EQ(r.status, RunStatus::success);
  auto map = sb.dest_root() / "packs" / ("map-" + std::to_string(r.run_id));
  fs::permissions(map, fs::perms::owner_write, fs::perm_options::add);
  auto text = read_bytes(map);
  write_file(map, text.substr(0, text.size() - 10));  // the last line cut off
  engine::sync::VerifyOptions vo;
  auto cut = engine::sync::run_verify(sb.cfg(), sb.st(), "d", vo);
  ASSERT_EQ(cut.findings.size(), 1u);
  EXPECT_EQ(cut.findings[0].path, "packs/map-" + std::to_string(r.run_id));
  EXPECT_EQ(cut.findings[0].kind, "changed");
  EXPECT_TRUE(cut.alarm_raised);
  fs::remove(map);
  auto gone = engine::sync::run_verify(sb.cfg(), sb.st(), "d", vo);
  ASSERT_EQ(gone.findings.size(), 1u);
  EXPECT_EQ(gone.findings[0].kind, "missing");
}

TEST_F(Packed, AMemberChangedWhilePackingLeavesTheRunPartialAndRecordsNoPack) {
  write_file(sb.src() / "dir/b.txt", "BRAVO");
  auto r = sb.sync_init();
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.drift, 1);
  EXPECT_EQ(store::count_remote_packs(sb.db(), "d"), 0);
  EXPECT_FALSE(fs::exists(sb.vdest() / "index"));
}

engine::OffloadReport offload_all(SyncSandbox& sb) {
  engine::OffloadOptions o;
  o.selectors = {"."};
  return engine::run_offload(sb.cfg(), sb.st(), "v", o);
}

TEST_F(Packed, OffloadReHashesEachPackOncePerRunThenRestoreInPlaceRoundTrips) {
  sb.set_config(packed_config(sb, sb.dest_root()).replace(packed_config(sb, sb.dest_root()).find("sync_to = ['d']"), 15,
                                                          "sync_to = ['d']\noffload_requires = ['d']"));
  for (int i = 0; i < 130; ++i) sb.write("many/f" + std::to_string(i), "small " + std::to_string(i));  // 3 batches
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto before = user_files(sb.src());
  Injected inj;
  engine::OffloadOptions o;
  o.selectors = {"."};
  o.transport = inj.factory();
  auto off = engine::run_offload(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(off.offloaded, 134);
  EXPECT_EQ(inj.count("read_back"), 2) << "the pack once for its 133 files over three batches, the object once";
  EXPECT_TRUE(user_files(sb.src()).empty());
  engine::RestoreOptions ro;
  ro.in_place = true;
  EXPECT_EQ(engine::run_restore(sb.cfg(), sb.st(), "v", ro).restored, 134);
  EXPECT_EQ(user_files(sb.src()), before);
}

TEST_F(Packed, OffloadRefusesTheFilesOfADamagedPackAndKeepsThem) {
  sb.set_config(packed_config(sb, sb.dest_root()).replace(packed_config(sb, sb.dest_root()).find("sync_to = ['d']"), 15,
                                                          "sync_to = ['d']\noffload_requires = ['d']"));
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  auto pack = sb.dest_root() / "packs" / packs_in(sb.dest_root()).at(0);
  fs::permissions(pack, fs::perms::owner_write, fs::perm_options::add);
  auto bytes = read_bytes(pack);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  write_file(pack, bytes);
  auto off = offload_all(sb);
  EXPECT_TRUE(off.world_refused);
  EXPECT_TRUE(fs::exists(sb.src() / "a.txt"));
  EXPECT_TRUE(fs::exists(sb.src() / "dir/same.txt"));
  EXPECT_TRUE(fs::exists(sb.src() / "dir/b.txt"));
  EXPECT_EQ(store::count_remote_packs(sb.db(), "d"), 0) << "the damaged pack is forgotten";
}

// A packed push crashed or power-cut at every call: no pack row without its
// bytes, and the retry completes without landing a recorded pack again.
// A pack is built in a temp file beside the index before its key is
// known. Killed (SIGKILL, no unwinding) at any put of a packed push, the
// push leaves no such file there: it has no name.
TEST(PackedFault, AKilledPushLeavesNoTempPackBesideTheIndex) {
  SyncSandbox sb("", fast_scratch_base());
  sb.set_config(packed_config(sb, sb.dest_root()));
  for (int i = 0; i < 4; ++i) sb.write("f" + std::to_string(i), "content " + std::to_string(i));
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto temp_packs = [&] {
    auto names = names_in(sb.db_path().parent_path());
    std::erase_if(names, [](const std::string& n) { return !n.starts_with("pack-"); });
    return names;
  };
  std::vector<int> puts;
  {
    Injected probe;
    sb.close();
    copy_tree(sb.state(), sb.tmp() / "state-saved");
    sb.open();
    SyncOptions o;
    o.init = true;
    o.transport = probe.factory();
    ASSERT_EQ(sb.sync(o).status, RunStatus::success);
    for (std::size_t i = 0; i < probe.log->size(); ++i)
      if ((*probe.log)[i].op == "put") puts.push_back(static_cast<int>(i) + 1);
  }
  ASSERT_GE(puts.size(), 3u);  // marker, pack, map, segment
  for (int at : puts) {
    SCOPED_TRACE("killed at call " + std::to_string(at));
    sb.close();
    fs::remove_all(sb.dest_root());
    fs::remove_all(sb.state());
    copy_tree(sb.tmp() / "state-saved", sb.state());
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      sb.open();
      Injected inj;
      dest::FaultPlan plan;
      plan.kind = dest::FaultPlan::Kind::stall;
      plan.at_call = at;
      plan.on_stall = [] { ::raise(SIGKILL); };
      SyncOptions o;
      o.init = true;
      o.transport = inj.factory(plan);
      try {
        sb.sync(o);
      } catch (...) {
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    EXPECT_EQ(temp_packs(), std::vector<std::string>{});
  }
  sb.open();
}

TEST(PackedFault, ACrashOrPowerCutAtEveryCallLeavesNoPackRowWithoutItsBytes) {
  SyncSandbox sb("", fast_scratch_base());
  sb.set_config(packed_config(sb, sb.dest_root()));
  for (int i = 0; i < 4; ++i) sb.write("f" + std::to_string(i), "content " + std::to_string(i));
  sb.write("big", std::string(3000, 'z'));
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto recorded_packs = [&] {
    std::set<std::string> recorded;
    store::Stmt st(sb.db(), "SELECT p.pack_key FROM remote_packs r JOIN packs p ON p.id = r.pack_id");
    while (st.step()) recorded.insert(to_hex(st.digest(0)));
    for (const auto& key : recorded) {
      auto path = sb.dest_root() / "packs" / key;
      EXPECT_TRUE(fs::is_regular_file(path) && to_hex(blake3(read_bytes(path))) == key) << "no bytes for pack " << key;
    }
    return recorded;
  };
  int step = 0;
  sweep_first_push(sb, recorded_packs, [&](const std::set<std::string>& recorded, const SweepRetry& retry) {
    for (const auto& c : retry.calls) {
      if (c.op != "rename") continue;
      for (const auto& key : recorded) EXPECT_NE(c.b, "packs/" + key) << "landed twice";
    }
    EXPECT_EQ(packs_in(sb.dest_root()).size(), 1u);
    EXPECT_EQ(store::count_remote_packs(sb.db(), "d"), 1);
    engine::RestoreOptions ro;
    ro.to = (sb.tmp() / ("out" + std::to_string(++step))).string();
    EXPECT_EQ(engine::run_restore(sb.cfg(), sb.st(), "v", ro).restored, 5);
  });
}

}  // namespace
