// The content-addressed push (spec sync-offload-restore.md §3.3): every
// content once as objects/<hex>, shared by the volumes of a destination;
// one segment per run; nothing at the destination ever replaced; and a
// crash or power cut at any call leaves only rows whose bytes are there.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/sync/push.hpp"
#include "store/artifacts.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
using engine::sync::SyncOptions;
using store::RunStatus;

namespace {

std::string ca_config(const SyncSandbox& sb, const std::string& extra = "") {
  return "[volumes.v]\npath = '" + sb.src().string() + "'\nsync_to = ['d']\n" + extra +
         "\n[destinations.d]\ntype = 'local'\nlayout = 'content-addressed'\nroot = '" + sb.dest_root().string() +
         "'\n\n[backups]\ndir = '" + (sb.state() / "backups").string() + "'\n";
}

std::string hex_of(const std::string& bytes) { return to_hex(blake3(bytes)); }

std::string object_of(const SyncSandbox& sb, const std::string& bytes) {
  return (sb.dest_root() / "objects" / hex_of(bytes)).string();
}

std::set<std::string> objects_in(const SyncSandbox& sb) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sb.dest_root() / "objects", ec)) out.insert(e.path().filename());
  return out;
}

std::string segment_of(const SyncSandbox& sb, std::int64_t run) {
  return read_bytes(sb.vdest() / "index" / ("run-" + std::to_string(run)));
}

// Every recorded object is at its name with the bytes its name says.
std::vector<std::string> object_problems(SyncSandbox& sb) {
  std::vector<std::string> out;
  store::Stmt st(sb.db(),
                 "SELECT c.blake3, c.size_bytes FROM remote_objects o JOIN contents c ON c.id = o.content_id WHERE "
                 "o.destination = 'd'");
  while (st.step()) {
    auto hex = to_hex(st.digest(0));
    auto p = sb.dest_root() / "objects" / hex;
    if (!fs::is_regular_file(fs::symlink_status(p))) {
      out.push_back("no object " + hex);
      continue;
    }
    auto bytes = read_bytes(p);
    if (to_hex(blake3(bytes)) != hex || static_cast<std::int64_t>(bytes.size()) != st.i64(1))
      out.push_back("other bytes at " + hex);
  }
  return out;
}

class ContentPush : public ::testing::Test {
 protected:
  ContentPush() {
    sb.set_config(ca_config(sb));
    sb.write("a.txt", "alpha");
    sb.write("b/copy-of-a.txt", "alpha");
    sb.write("b/d.txt", "delta");
  }
  SyncSandbox sb;
};

TEST_F(ContentPush, EachContentLandsOnceAsAnObjectBesideASegment) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  Injected inj;
  SyncOptions o;
  o.init = true;
  o.transport = inj.factory();
  auto r = sb.sync(o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 2);
  EXPECT_EQ(inj.count("put"), 2 + 3) << "two objects, the marker, the segment and the index snapshot";
  EXPECT_EQ(objects_in(sb), (std::set<std::string>{hex_of("alpha"), hex_of("delta")}));
  EXPECT_EQ(read_bytes(object_of(sb, "alpha")), "alpha");
  EXPECT_FALSE(fs::exists(sb.vdest() / "a.txt")) << "a content layout keeps no paths of the volume";
  auto seg = segment_of(sb, r.run_id);
  EXPECT_EQ(seg, "{\"path\":\"a.txt\",\"blake3\":\"" + hex_of("alpha") +
                     "\",\"status\":\"present\",\"size_bytes\":5,\"mtime_ns\":" +
                     std::to_string(mtime_ns(sb.src() / "a.txt")) + "}\n" +
                     "{\"path\":\"b/copy-of-a.txt\",\"blake3\":\"" + hex_of("alpha") +
                     "\",\"status\":\"present\",\"size_bytes\":5,\"mtime_ns\":" +
                     std::to_string(mtime_ns(sb.src() / "b/copy-of-a.txt")) + "}\n" +
                     "{\"path\":\"b/d.txt\",\"blake3\":\"" + hex_of("delta") +
                     "\",\"status\":\"present\",\"size_bytes\":5,\"mtime_ns\":" +
                     std::to_string(mtime_ns(sb.src() / "b/d.txt")) + "}\n");
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 2);
  EXPECT_TRUE(object_problems(sb).empty());
  EXPECT_EQ(r.method, "fingerprint-verified") << "every object was read back past the cache";
  EXPECT_FALSE(fs::exists(sb.vdest() / ".squirrel-staging" / ("run-" + std::to_string(r.run_id))));
}

TEST_F(ContentPush, ALaterPushUploadsOnlyNewContentAndAnEmptyDeltaStillSealsASegment) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  sb.write("e.txt", "echo");
  sb.write("again-delta.txt", "delta");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  Injected inj;
  SyncOptions o;
  o.transport = inj.factory();
  auto r = sb.sync(o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 1) << "delta is an object already";
  EXPECT_EQ(r.already_live, 2) << "alpha and delta";
  EXPECT_EQ(inj.count("put"), 1 + 2) << "one object, the segment and the index snapshot";
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 3);
  auto seg = segment_of(sb, r.run_id);
  EXPECT_NE(seg.find("\"path\":\"again-delta.txt\""), std::string::npos) << seg;
  EXPECT_EQ(seg.find("\"path\":\"a.txt\""), std::string::npos) << "only the delta: " << seg;

  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto idle = sb.sync();
  ASSERT_EQ(idle.status, RunStatus::success) << idle.error;
  EXPECT_EQ(idle.written, 0);
  EXPECT_TRUE(fs::is_regular_file(sb.vdest() / "index" / ("run-" + std::to_string(idle.run_id))));
  EXPECT_EQ(segment_of(sb, idle.run_id), "");
}

TEST_F(ContentPush, TwoVolumesWithSharedContentUploadItOnce) {
  fs::create_directories(sb.tmp() / "w");
  write_file(sb.tmp() / "w" / "same-as-a.bin", "alpha");
  write_file(sb.tmp() / "w" / "own.bin", "omega");
  sb.set_config(ca_config(sb) + "\n[volumes.w]\npath = '" + (sb.tmp() / "w").string() + "'\nsync_to = ['d']\n");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  ASSERT_EQ(engine::run_index(sb.cfg(), sb.st(), "w", index_opts()).status, RunStatus::success);
  Injected inj;
  SyncOptions o;
  o.init = true;
  o.transport = inj.factory();
  auto r = engine::sync::run_mirror_sync(sb.cfg(), sb.st(), "w", "d", o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.written, 1);
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 3) << "alpha, delta, omega";
  EXPECT_EQ(objects_in(sb).size(), 3u);
  EXPECT_TRUE(fs::is_regular_file(sb.dest_root() / "w" / "index" / ("run-" + std::to_string(r.run_id))));
}

TEST_F(ContentPush, AnObjectNameHoldingOtherBytesIsNeverReplaced) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  fs::create_directories(sb.dest_root() / "objects");
  write_file(object_of(sb, "delta"), "not delta");
  ASSERT_EQ(sb.sync_init().status, RunStatus::partial);
  EXPECT_EQ(read_bytes(object_of(sb, "delta")), "not delta");
  EXPECT_FALSE(fs::exists(sb.vdest() / "index")) << "no segment for a run that did not land everything";
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 1) << "alpha landed and is recorded";
  EXPECT_TRUE(store::vector_of(sb.db(), sb.vol_id(), "d").empty());
}

TEST_F(ContentPush, AnObjectAlreadyThereWithTheRightBytesIsRecordedNotUploaded) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  fs::create_directories(sb.dest_root() / "objects");
  write_file(object_of(sb, "delta"), "delta");
  Injected inj;
  SyncOptions o;
  o.init = true;
  o.transport = inj.factory();
  auto r = sb.sync(o);
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(inj.count("put"), 1 + 3) << "alpha, the marker, the segment and the index snapshot";
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 2);
}

TEST_F(ContentPush, ASourceChangedSinceTheIndexIsNotStoredUnderTheIndexedHash) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  write_file(sb.src() / "b/d.txt", "DELTA");
  auto r = sb.sync_init();
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.drift, 1);
  EXPECT_FALSE(fs::exists(object_of(sb, "delta")));
  EXPECT_FALSE(fs::exists(object_of(sb, "DELTA")));
  EXPECT_FALSE(fs::exists(sb.vdest() / "index"));
}

// Records are claims: a content recorded as an object that is gone is not
// sealed over by the next volume's push.
TEST_F(ContentPush, ARecordedObjectThatIsGoneFailsThePushThatWouldRelyOnIt) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  fs::remove(object_of(sb, "alpha"));
  fs::create_directories(sb.tmp() / "w");
  write_file(sb.tmp() / "w" / "x", "alpha");
  sb.set_config(ca_config(sb) + "\n[volumes.w]\npath = '" + (sb.tmp() / "w").string() + "'\nsync_to = ['d']\n");
  ASSERT_EQ(engine::run_index(sb.cfg(), sb.st(), "w", index_opts()).status, RunStatus::success);
  SyncOptions o;
  o.init = true;
  auto r = engine::sync::run_mirror_sync(sb.cfg(), sb.st(), "w", "d", o);
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.failed, 1);
  EXPECT_FALSE(fs::exists(sb.dest_root() / "w" / "index"));
}

TEST_F(ContentPush, AWipedDestinationIsRefusedRatherThanSealedOver) {
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  fs::remove_all(sb.dest_root() / "objects");
  fs::remove_all(sb.vdest() / "index");
  sb.write("new.txt", "new");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  try {
    sb.sync();
    ADD_FAILURE() << "a destination that lost its segments was trusted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::refused);
    EXPECT_NE(std::string(e.what()).find("segment"), std::string::npos) << e.what();
  }
}

TEST_F(ContentPush, AVolumeNamedLikeTheObjectsFolderIsRefused) {
  sb.set_config("[volumes.objects]\npath = '" + sb.src().string() +
                "'\nsync_to = ['d']\n\n[destinations.d]\ntype = 'local'\nlayout = 'content-addressed'\nroot = '" +
                sb.dest_root().string() + "'\n");
  ASSERT_EQ(engine::run_index(sb.cfg(), sb.st(), "objects", index_opts()).status, RunStatus::success);
  SyncOptions o;
  o.init = true;
  EXPECT_THROW(engine::sync::run_mirror_sync(sb.cfg(), sb.st(), "objects", "d", o), Error);
  EXPECT_FALSE(fs::exists(sb.dest_root() / "objects"));
}

// A push crashed or power-cut at every call: afterwards every recorded
// object is at its name with its bytes, and the next push completes without
// uploading anything that was recorded.
TEST(ContentPushFault, ACrashOrPowerCutAtEveryCallLeavesOnlyConfirmedRecords) {
  SyncSandbox sb("", fast_scratch_base());
  sb.set_config(ca_config(sb));
  for (int i = 0; i < 5; ++i) sb.write("f" + std::to_string(i), "content " + std::to_string(i % 4));
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto recorded_objects = [&] {
    EXPECT_TRUE(object_problems(sb).empty());
    std::set<std::string> recorded;
    store::Stmt st(sb.db(), "SELECT c.blake3 FROM remote_objects o JOIN contents c ON c.id = o.content_id");
    while (st.step()) recorded.insert(to_hex(st.digest(0)));
    return recorded;
  };
  sweep_first_push(sb, recorded_objects, [&](const std::set<std::string>& recorded, const SweepRetry& retry) {
    for (const auto& c : retry.calls) {
      if (c.op != "rename") continue;
      for (const auto& hex : recorded) EXPECT_NE(c.b, "objects/" + hex) << "uploaded twice";
    }
    EXPECT_EQ(objects_in(sb).size(), 4u);
    EXPECT_TRUE(object_problems(sb).empty());
    EXPECT_EQ(store::count_objects(sb.db(), "d"), 4);
  });
}

}  // namespace
