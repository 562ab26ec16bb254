// Hostile destination trees and a hostile source (spec
// sync-offload-restore.md §9 cases 6-9 and 12): symlinks planted at the
// volume directory, in a parent of a target path, at the target itself and
// in place of the reserved directories; directories where files are expected
// and files where directories are expected; foreign bytes at a target path;
// a source file that changes after it was indexed.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using store::RunStatus;

namespace {

class SyncHostile : public ::testing::Test {
 protected:
  SyncSandbox sb;
  fs::path outside = sb.tmp() / "outside";  // where planted symlinks point; must never change

  void SetUp() override {
    sb.write("a.txt", "alpha");
    sb.write("dir/c.txt", "charlie");
    sb.write("dir/sub/d.txt", "delta");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    auto r = sb.sync_init();
    ASSERT_EQ(r.status, RunStatus::success) << r.error;
    write_file(outside / "secret.txt", "outside bytes");
    write_file(outside / "dir/c.txt", "outside charlie");
    outside_before = tree_of(outside);
  }

  void expect_outside_untouched() { EXPECT_EQ(tree_of(outside), outside_before) << "written through a symlink"; }

  void expect_consistent() {
    EXPECT_EQ(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
    EXPECT_LE(max_live_ledger_rows_per_path(sb.db()), 1);
  }

  void expect_settled() {
    expect_consistent();
    EXPECT_EQ(present_not_live(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
  }

  std::string hist(std::int64_t run, const std::string& path) {
    return ".squirrel-history/run-" + std::to_string(run) + "/" + path;
  }

  std::vector<std::string> unrecorded_audit(std::int64_t run) {
    std::vector<std::string> out;
    for (const auto& a : store::audit_rows(sb.db(), run))
      if (a.transition == "displace-unrecorded") out.push_back(a.note);
    return out;
  }

  std::vector<store::RunRow> runs() { return sync_runs(sb.db()); }

  Tree outside_before;
};

}  // namespace

// ---- symlinks ------------------------------------------------------------------

TEST_F(SyncHostile, ASymlinkInPlaceOfTheVolumeDirectoryIsNeverWrittenThrough) {
  // The real volume directory moves outside; a link takes its place.
  fs::rename(sb.vdest(), outside / "v-real");
  fs::create_directory_symlink(outside / "v-real", sb.vdest());
  outside_before = tree_of(outside);
  sb.write("a.txt", "alpha, second version");
  sb.write("new.txt", "new");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto vec = vector_rows(sb.db(), sb.vol_id());
  for (bool init : {false, true}) {
    engine::sync::SyncOptions o;
    o.init = init;
    EXPECT_THROW(sb.sync(o), Error);
    expect_outside_untouched();
    EXPECT_TRUE(fs::is_symlink(sb.vdest()));
    EXPECT_NE(runs().back().status, RunStatus::success);
  }
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);

  // Put the directory back: a clean push settles everything.
  fs::remove(sb.vdest());
  fs::rename(outside / "v-real", sb.vdest());
  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::success) << r.error;
  expect_settled();
}

TEST_F(SyncHostile, AFirstSyncOntoASymlinkedVolumeDirectoryIsRefused) {
  SyncSandbox fresh;
  fresh.write("a.txt", "alpha");
  ASSERT_EQ(fresh.index().status, RunStatus::success);
  fs::create_directories(fresh.dest_root());
  fs::create_directories(outside / "empty");
  fs::create_directory_symlink(outside / "empty", fresh.vdest());
  outside_before = tree_of(outside);
  EXPECT_THROW(fresh.sync_init(), Error);
  expect_outside_untouched();
  EXPECT_TRUE(fs::is_empty(outside / "empty"));
}

TEST_F(SyncHostile, ASymlinkInAParentOfANewTargetIsMovedAsideNotFollowed) {
  sb.write("newdir/f.txt", "foxtrot");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  fs::create_directory_symlink(outside, sb.vdest() / "newdir");
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  expect_outside_untouched();
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(sb.vdest() / "newdir"))) << "the path lands in a real directory";
  EXPECT_EQ(read_bytes(sb.vdest() / "newdir/f.txt"), "foxtrot");
  auto moved = sb.vdest() / hist(r.run_id, "newdir");
  ASSERT_TRUE(fs::is_symlink(moved)) << "the link itself moved to history";
  EXPECT_EQ(fs::read_symlink(moved), outside);
  EXPECT_EQ(r.foreign, std::vector<std::string>{"newdir"});
  EXPECT_EQ(unrecorded_audit(r.run_id), std::vector<std::string>{"newdir"});
  expect_settled();
}

TEST_F(SyncHostile, ASymlinkReplacingARecordedDirectoryLosesItsRowsAndTheNextPushRepairsThem) {
  // Someone swaps the recorded directory for a link to a look-alike elsewhere.
  fs::remove_all(sb.vdest() / "dir");
  fs::create_directory_symlink(outside / "dir", sb.vdest() / "dir");
  sb.write("dir/c.txt", "charlie, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto vec = vector_rows(sb.db(), sb.vol_id());
  auto r = sb.sync();
  expect_outside_untouched();
  EXPECT_TRUE(fs::is_symlink(sb.vdest() / hist(r.run_id, "dir")));
  EXPECT_EQ(read_bytes(sb.vdest() / "dir/c.txt"), "charlie, second version");
  expect_consistent();
  // dir/sub/d.txt was recorded under the link: it is lost, and this push
  // cannot claim it, so it is not a success and evidence stays.
  EXPECT_EQ(ledger_states(sb.db(), sb.vol_id())["dir/sub/d.txt"], "lost");
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);

  auto again = sb.sync();
  EXPECT_EQ(again.status, RunStatus::success) << again.error;
  EXPECT_EQ(again.written, 1);
  EXPECT_EQ(read_bytes(sb.vdest() / "dir/sub/d.txt"), "delta");
  expect_settled();
  expect_outside_untouched();
}

TEST_F(SyncHostile, ASymlinkAtTheTargetIsMovedToHistoryNotFollowed) {
  // At a recorded path (the record becomes lost) and at a new path.
  fs::remove(sb.vdest() / "a.txt");
  fs::create_symlink(outside / "secret.txt", sb.vdest() / "a.txt");
  fs::create_symlink(outside / "secret.txt", sb.vdest() / "b.txt");
  sb.write("a.txt", "alpha, second version");
  sb.write("b.txt", "bravo");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  expect_outside_untouched();
  for (const char* name : {"a.txt", "b.txt"}) {
    auto moved = sb.vdest() / hist(r.run_id, name);
    ASSERT_TRUE(fs::is_symlink(moved)) << name;
    EXPECT_EQ(fs::read_symlink(moved), outside / "secret.txt");
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(sb.vdest() / name))) << name;
  }
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
  EXPECT_EQ(read_bytes(sb.vdest() / "b.txt"), "bravo");
  EXPECT_EQ(ledger_states(sb.db(), sb.vol_id())["a.txt"], "lost,live");
  EXPECT_EQ(r.foreign, (std::vector<std::string>{"a.txt", "b.txt"}));
  expect_settled();
}

class SyncHostileReserved : public SyncHostile, public ::testing::WithParamInterface<const char*> {};

TEST_P(SyncHostileReserved, ASymlinkInPlaceOfAReservedDirectoryFailsThePushAndWritesNothingThroughIt) {
  const std::string reserved = GetParam();
  auto aside = sb.tmp() / "aside";
  if (fs::exists(sb.vdest() / reserved)) fs::rename(sb.vdest() / reserved, aside);
  fs::create_directories(outside / "reserved");
  fs::create_directory_symlink(outside / "reserved", sb.vdest() / reserved);
  outside_before = tree_of(outside);
  sb.write("a.txt", "alpha, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto vec = vector_rows(sb.db(), sb.vol_id());
  try {
    auto r = sb.sync();
    EXPECT_NE(r.status, RunStatus::success);
  } catch (const Error&) {
  }
  expect_outside_untouched();
  EXPECT_NE(runs().back().status, RunStatus::success);
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);
  expect_consistent();
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha") << "the recorded version stays where it was";

  fs::remove(sb.vdest() / reserved);
  if (fs::exists(aside)) fs::rename(aside, sb.vdest() / reserved);
  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::success) << r.error;
  expect_settled();
  expect_outside_untouched();
}

INSTANTIATE_TEST_SUITE_P(SyncHostile, SyncHostileReserved,
                         ::testing::Values(".squirrel-history", ".squirrel-staging", ".squirrel-index"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) { return std::string(param_info.param).substr(10); });

// ---- files and directories in the wrong place -----------------------------------

TEST_F(SyncHostile, AForeignDirectoryWhereAFileIsExpectedMovesToHistoryWhole) {
  write_file(sb.vdest() / "new.txt/inside/deep.txt", "foreign deep");
  write_file(sb.vdest() / "new.txt/top.txt", "foreign top");
  sb.write("new.txt", "new");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(read_bytes(sb.vdest() / "new.txt"), "new");
  EXPECT_EQ(read_bytes(sb.vdest() / hist(r.run_id, "new.txt/inside/deep.txt")), "foreign deep");
  EXPECT_EQ(read_bytes(sb.vdest() / hist(r.run_id, "new.txt/top.txt")), "foreign top");
  EXPECT_EQ(r.foreign, std::vector<std::string>{"new.txt"});
  EXPECT_EQ(unrecorded_audit(r.run_id), std::vector<std::string>{"new.txt"});
  expect_settled();
}

TEST_F(SyncHostile, ARecordedDirectoryWhereAFileIsExpectedMovesWithEveryRowUnderIt) {
  // Foreign bytes beside the recorded ones, and a recorded version changed
  // at the destination: all preserved, only the intact one vouched for.
  write_file(sb.vdest() / "dir/foreign.txt", "foreign beside");
  write_file(sb.vdest() / "dir/sub/d.txt.tmp", "x");
  fs::remove(sb.vdest() / "dir/c.txt");
  write_file(sb.vdest() / "dir/c.txt", "changed behind squirrel's back");
  sb.remove("dir");
  sb.write("dir", "dir is a file now");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(read_bytes(sb.vdest() / "dir"), "dir is a file now");
  auto h = sb.vdest() / hist(r.run_id, "dir");
  EXPECT_EQ(read_bytes(h / "foreign.txt"), "foreign beside");
  EXPECT_EQ(read_bytes(h / "c.txt"), "changed behind squirrel's back");
  EXPECT_EQ(read_bytes(h / "sub/d.txt"), "delta");
  auto states = ledger_states(sb.db(), sb.vol_id());
  EXPECT_EQ(states["dir/sub/d.txt"], "displaced");
  EXPECT_EQ(states["dir/c.txt"], "lost");
  EXPECT_EQ(r.displaced, 1);
  expect_settled();
}

TEST_F(SyncHostile, AForeignFileWhereADirectoryIsExpectedMovesToHistory) {
  write_file(sb.vdest() / "newdir", "a foreign file in the way");
  sb.write("newdir/f.txt", "foxtrot");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(read_bytes(sb.vdest() / "newdir/f.txt"), "foxtrot");
  EXPECT_EQ(read_bytes(sb.vdest() / hist(r.run_id, "newdir")), "a foreign file in the way");
  EXPECT_EQ(r.foreign, std::vector<std::string>{"newdir"});
  EXPECT_EQ(unrecorded_audit(r.run_id), std::vector<std::string>{"newdir"});
  expect_settled();
}

TEST_F(SyncHostile, ForeignBytesAtATargetPathAreMovedNamedAndNeverOverwritten) {
  write_file(sb.vdest() / "dir/new.txt", "foreign new");
  // A recorded file changed behind squirrel's back counts as foreign too.
  fs::remove(sb.vdest() / "a.txt");
  write_file(sb.vdest() / "a.txt", "tampered alpha");
  sb.write("dir/new.txt", "ours");
  sb.write("a.txt", "alpha, second version");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  std::vector<std::string> warned;
  auto r = sb.sync();
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  EXPECT_EQ(r.foreign, (std::vector<std::string>{"a.txt", "dir/new.txt"}));
  EXPECT_EQ(r.displaced_unrecorded, 2);
  EXPECT_EQ(unrecorded_audit(r.run_id), (std::vector<std::string>{"a.txt", "dir/new.txt"}));
  EXPECT_EQ(read_bytes(sb.vdest() / hist(r.run_id, "dir/new.txt")), "foreign new");
  EXPECT_EQ(read_bytes(sb.vdest() / hist(r.run_id, "a.txt")), "tampered alpha");
  EXPECT_EQ(read_bytes(sb.vdest() / "dir/new.txt"), "ours");
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
  for (const auto& e : sb.events)
    if (e.type == engine::sync::SyncEvent::Type::warning) warned.push_back(e.path);
  EXPECT_NE(std::find(warned.begin(), warned.end(), "dir/new.txt"), warned.end());
  EXPECT_EQ(ledger_states(sb.db(), sb.vol_id())["a.txt"], "lost,live") << "the tampered record is not vouched for";
  expect_settled();
}

// ---- a hostile source -----------------------------------------------------------

TEST_F(SyncHostile, ASourceFileModifiedAfterIndexingIsCountedNotStored) {
  sb.write("a.txt", "alpha, second version");
  sb.write("z.txt", "zulu");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto vec = vector_rows(sb.db(), sb.vol_id());
  auto log = store::count_history(sb.db(), sb.vol_id(), "d");
  // Same size, other bytes: only the hash can tell.
  sb.write("a.txt", "ALPHA, SECOND VERSION");
  auto r = sb.sync();
  EXPECT_EQ(r.status, RunStatus::partial);
  EXPECT_EQ(r.drift, 1);
  EXPECT_FALSE(r.evidence_advanced);
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha") << "the path keeps its old version";
  EXPECT_EQ(read_bytes(sb.vdest() / "z.txt"), "zulu");
  EXPECT_EQ(ledger_states(sb.db(), sb.vol_id())["a.txt"], "live");
  for (const auto& row : store::ledger_rows(sb.db(), "d", sb.vol_id()))
    if (row.path == "a.txt") { EXPECT_EQ(row.hash, blake3(std::string("alpha"))) << "nothing under the stale hash"; }
  for (const auto& [p, h] : files_of(tree_of(sb.vdest())))
    if (!p.starts_with(".squirrel-staging")) { EXPECT_NE(h, blake3(std::string("ALPHA, SECOND VERSION"))) << p; }
  EXPECT_FALSE(fs::exists(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(r.run_id))));
  EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), vec);
  EXPECT_EQ(store::count_history(sb.db(), sb.vol_id(), "d"), log);
  expect_consistent();

  // Re-index: the next push lands the new bytes and clears the refused copy.
  ASSERT_EQ(sb.index().status, RunStatus::success);
  auto again = sb.sync();
  ASSERT_EQ(again.status, RunStatus::success) << again.error;
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "ALPHA, SECOND VERSION");
  for (const auto& [p, n] : tree_of(sb.vdest() / ".squirrel-staging")) EXPECT_NE(n.type, 'f') << p;
  expect_settled();
}
