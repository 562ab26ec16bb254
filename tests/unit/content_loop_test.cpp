// The loop over a content-addressed destination: restore with and without
// the index, verify finding exactly what was damaged, and offload gating on
// the objects and looking at each before the unlink.
#include <gtest/gtest.h>

#include "engine/offload/offload.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/verify.hpp"
#include "store/alarms.hpp"
#include "store/artifacts.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
using store::RunStatus;

namespace {

// The files of a tree but the volume marker.
std::map<std::string, Digest> user_files(const fs::path& root) {
  auto out = files_of(tree_of(root));
  out.erase(".squirrel-volume");
  return out;
}

class ContentLoop : public ::testing::Test {
 protected:
  ContentLoop() {
    sb.set_config("[volumes.v]\npath = '" + sb.src().string() +
                  "'\nsync_to = ['d']\noffload_requires = ['d']\n\n[destinations.d]\ntype = 'local'\nlayout = "
                  "'content-addressed'\nroot = '" +
                  sb.dest_root().string() + "'\n\n[backups]\ndir = '" + (sb.state() / "backups").string() + "'\n");
    sb.write("a.txt", "alpha");
    sb.write("dir/same.txt", "alpha");
    sb.write("dir/b.txt", "bravo");
    sb.write("c.txt", "charlie");
    EXPECT_EQ(sb.index().status, RunStatus::success);
    auto r = sb.sync_init();
    EXPECT_EQ(r.status, RunStatus::success) << r.error;
  }

  fs::path object(const std::string& bytes) const { return sb.dest_root() / "objects" / to_hex(blake3(bytes)); }

  engine::RestoreReport restore_to(const fs::path& to, std::vector<std::string> selectors = {}) {
    engine::RestoreOptions o;
    o.to = to.string();
    o.selectors = std::move(selectors);
    return engine::run_restore(sb.cfg(), sb.st(), "v", o);
  }

  engine::sync::VerifyReport verify(bool full = true) {
    engine::sync::VerifyOptions o;
    o.full = full;
    return engine::sync::run_verify(sb.cfg(), sb.st(), "d", o);
  }

  engine::OffloadReport offload() {
    engine::OffloadOptions o;
    o.selectors = {"."};
    return engine::run_offload(sb.cfg(), sb.st(), "v", o);
  }

  SyncSandbox sb;
};

TEST_F(ContentLoop, RestoreWithTheIndexBringsBackEveryFileFromItsObject) {
  auto out = sb.tmp() / "out";
  auto r = restore_to(out);
  EXPECT_EQ(r.restored, 4);
  EXPECT_EQ(files_of(tree_of(out)), user_files(sb.src()));
  auto some = restore_to(sb.tmp() / "some", {"dir"});
  EXPECT_EQ(some.restored, 2);
  EXPECT_FALSE(fs::exists(sb.tmp() / "some" / "a.txt"));
}

TEST_F(ContentLoop, RestoreWithoutTheIndexReplaysTheSegments) {
  sb.write("c.txt", "charlie two");
  sb.remove("a.txt");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  sb.close();
  fs::remove_all(sb.state());
  fs::create_directories(sb.state());
  sb.open();
  auto out = sb.tmp() / "fresh";
  auto r = restore_to(out);
  EXPECT_EQ(r.restored, 3);
  EXPECT_TRUE(r.without_index && r.from_segments) << "said as segments of objects, not a mirror's receipts";
  EXPECT_EQ(r.receipts_read, 2) << "one segment per push";
  EXPECT_EQ(files_of(tree_of(out)), user_files(sb.src())) << "the latest segment line of each path wins";
  EXPECT_FALSE(fs::exists(out / "a.txt")) << "a.txt was deleted";
}

TEST_F(ContentLoop, RestoreRefusesAnObjectWhoseBytesDoNotHash) {
  auto obj = object("bravo");
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  write_file(obj, "BRAVO");
  auto r = restore_to(sb.tmp() / "out");
  EXPECT_EQ(r.restored, 3);
  EXPECT_EQ(r.mismatched, 1);
  EXPECT_FALSE(fs::exists(sb.tmp() / "out" / "dir" / "b.txt"));
}

TEST_F(ContentLoop, AFullVerifyOfAnIntactDestinationIsCleanAndCountsOrphansApart) {
  write_file(sb.dest_root() / "objects" / std::string(64, 'a'), "stray");
  auto r = verify();
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.rehashed, 3);
  EXPECT_EQ(r.orphans, 1);
  EXPECT_EQ(r.method, "fingerprint-verified");
}

TEST_F(ContentLoop, VerifyReportsEachDamageExactlyAndOffloadRefusesExactlyTheAffectedFiles) {
  auto obj = object("bravo");
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  auto mtime = mtime_ns(obj);
  write_file(obj, "BRAVO");  // same size, mtime kept
  set_mtime_ns(obj, mtime);
  fs::remove(object("charlie"));
  auto r = verify();
  ASSERT_EQ(r.findings.size(), 2u);
  std::map<std::string, std::string> kinds;
  for (const auto& f : r.findings) kinds[f.path] = f.kind;
  EXPECT_EQ(kinds["objects/" + to_hex(blake3("bravo"))], "changed");
  EXPECT_EQ(kinds["objects/" + to_hex(blake3("charlie"))], "missing");
  EXPECT_TRUE(r.alarm_raised);
  EXPECT_EQ(store::count_objects(sb.db(), "d"), 1) << "only alpha is still held";

  ASSERT_TRUE(engine::sync::acknowledge_alarm(sb.db(), "d", "test"));
  auto off = offload();
  EXPECT_EQ(off.offloaded, 2) << "the two files of alpha";
  EXPECT_FALSE(fs::exists(sb.src() / "a.txt"));
  EXPECT_FALSE(fs::exists(sb.src() / "dir/same.txt"));
  EXPECT_TRUE(fs::exists(sb.src() / "dir/b.txt"));
  EXPECT_TRUE(fs::exists(sb.src() / "c.txt"));

  // The next push uploads charlie again; bravo's name holds other bytes and
  // is never replaced, so that push stays partial until a person acts.
  auto again = sb.sync();
  EXPECT_EQ(again.status, RunStatus::partial);
  EXPECT_TRUE(fs::exists(object("charlie")));
  EXPECT_EQ(read_bytes(obj), "BRAVO");
}

TEST_F(ContentLoop, VerifyReportsADeletedSegment) {
  auto runs = sb.db().query_i64("SELECT MAX(id) FROM runs WHERE kind = 'sync' AND status = 'success'").value_or(0);
  fs::remove(sb.vdest() / "index" / ("run-" + std::to_string(runs)));
  auto r = verify();
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].path, "index/run-" + std::to_string(runs));
  EXPECT_EQ(r.findings[0].kind, "missing");
  EXPECT_TRUE(r.alarm_raised);
}

TEST_F(ContentLoop, OffloadLooksAtTheObjectBeforeTheUnlink) {
  // The records say verified; the world says otherwise.
  auto obj = object("charlie");
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  auto mtime = mtime_ns(obj);
  write_file(obj, "CHARLIE");
  set_mtime_ns(obj, mtime);
  auto off = offload();
  EXPECT_TRUE(fs::exists(sb.src() / "c.txt"));
  EXPECT_TRUE(off.world_refused);
  EXPECT_FALSE(store::object_recorded(sb.db(), sb.db().query_i64("SELECT id FROM contents WHERE size_bytes = 7")
                                                   .value_or(0), "d"))
      << "the damaged object is forgotten";
}

TEST_F(ContentLoop, OffloadOfEveryFileThenRestoreInPlaceRoundTrips) {
  auto before = user_files(sb.src());
  auto off = offload();
  EXPECT_EQ(off.offloaded, 4);
  EXPECT_EQ(off.copies_rehashed, 4);
  EXPECT_TRUE(user_files(sb.src()).empty());
  engine::RestoreOptions o;
  o.in_place = true;
  auto r = engine::run_restore(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(r.restored, 4);
  EXPECT_EQ(user_files(sb.src()), before);
}

}  // namespace
