// The files store (data-model §3.5-3.6, §7, invariants 40-46): rows are
// observations that are superseded, revived and flipped but never rewritten,
// contents are append-only with one size per digest, a batch is all or
// nothing, and every live-set change recomputes the folder Merkle tree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "index_util.hpp"
#include "store/folders.hpp"
#include "store/runs.hpp"

using namespace sq;
using namespace sq::store;
using ::testing::IsEmpty;

namespace {

class FilesStore : public ::testing::Test {
 protected:
  test::TempDir dir;
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t vol = create_volume(db, "v", "/v").id;

  // A finished index run: the run ids the rows point at are real.
  std::int64_t run() {
    auto r = begin_run(db, {RunKind::index, vol, ""});
    finish_run(db, r.run_id, {RunStatus::success, "", 0, std::nullopt});
    return r.run_id;
  }

  static Observation obs(const std::string& path, const std::string& content, std::int64_t mtime = 1) {
    return {path, blake3(content), static_cast<std::int64_t>(content.size()), mtime, 0, false};
  }

  BatchCounts apply(std::int64_t run_id, const std::vector<Observation>& entries) {
    auto c = apply_index_batch(db, vol, run_id, entries);
    expect_consistent();
    return c;
  }

  FileRow live(const std::string& path) {
    auto r = live_row_by_path(db, vol, path);
    if (!r) throw std::runtime_error("no live row at " + path);
    return *r;
  }

  std::int64_t content_id(const std::string& content) {
    auto d = blake3(content);
    return db.query_i64("SELECT id FROM contents WHERE blake3 = ?", {Value{Blob(d.begin(), d.end())}}).value_or(0);
  }

  std::int64_t root_count() {
    return db.query_i64("SELECT file_count FROM folders WHERE volume_id = ? AND path = X''", {Value{vol}}).value_or(-1);
  }

  void expect_consistent() {
    EXPECT_THAT(test::folder_problems(db, vol), IsEmpty());
    EXPECT_LE(test::max_live_rows_per_path(db), 1);
  }
};

void expect_counts(const BatchCounts& c, std::int64_t added, std::int64_t modified, std::int64_t unchanged) {
  EXPECT_EQ(c.added, added);
  EXPECT_EQ(c.modified, modified);
  EXPECT_EQ(c.unchanged, unchanged);
}

}  // namespace

TEST_F(FilesStore, FirstObservationInsertsAPresentRowStampedWithItsRun) {
  auto r1 = run();
  expect_counts(apply(r1, {obs("a.txt", "A", 7), obs("d/e/b.txt", "B")}), 2, 0, 0);
  auto a = live("a.txt");
  EXPECT_EQ(a.status, "present");
  EXPECT_EQ(a.hash, blake3("A"));
  EXPECT_EQ(a.size, 1);
  EXPECT_EQ(a.mtime_ns, 7);
  EXPECT_EQ(a.first_seen_run, r1);
  EXPECT_EQ(a.last_seen_run, r1);
  EXPECT_EQ(a.status_changed_run, r1);
  EXPECT_EQ(live("d/e/b.txt").first_seen_run, r1);
  EXPECT_EQ(root_count(), 2);
}

TEST_F(FilesStore, NewContentSupersedesTheLiveRowAndKeepsItQueryable) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("a.txt", "A")});
  expect_counts(apply(r2, {obs("a.txt", "BB", 2)}), 0, 1, 0);
  auto hist = history_by_path(db, vol, "a.txt");
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0].hash, blake3("A"));
  EXPECT_EQ(hist[0].status, "superseded");
  EXPECT_EQ(hist[0].last_seen_run, r1) << "last_seen is frozen at the last run that saw it alive";
  EXPECT_EQ(hist[0].status_changed_run, r2);
  EXPECT_EQ(hist[1].hash, blake3("BB"));
  EXPECT_EQ(hist[1].status, "present");
  EXPECT_EQ(hist[1].first_seen_run, r2);
  auto by_hash = rows_by_hash(db, blake3("A"));
  ASSERT_EQ(by_hash.size(), 1u);
  EXPECT_EQ(by_hash[0].status, "superseded");
  EXPECT_EQ(live("a.txt").size, 2);
}

TEST_F(FilesStore, RevertRevivesTheOldRowInsteadOfInsertingADuplicate) {
  auto r1 = run(), r2 = run(), r3 = run();
  apply(r1, {obs("a.txt", "A")});
  apply(r2, {obs("a.txt", "B")});
  expect_counts(apply(r3, {obs("a.txt", "A", 3)}), 0, 1, 0);
  auto hist = history_by_path(db, vol, "a.txt");
  ASSERT_EQ(hist.size(), 2u) << "A->B->A keeps exactly one row per content";
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM files").value_or(0), 2);
  auto a = live("a.txt");
  EXPECT_EQ(a.hash, blake3("A"));
  EXPECT_EQ(a.first_seen_run, r1);
  EXPECT_EQ(a.last_seen_run, r3);
  EXPECT_EQ(a.status_changed_run, r3);
  EXPECT_EQ(a.mtime_ns, 3);
  EXPECT_EQ(hist[1].hash, blake3("B"));
  EXPECT_EQ(hist[1].status, "superseded");
  EXPECT_EQ(hist[1].status_changed_run, r3);
}

TEST_F(FilesStore, StatusChangedRunMovesExactlyWhenTheStatusChanges) {
  auto r1 = run(), r2 = run(), r3 = run(), r4 = run(), r5 = run(), r6 = run();
  apply(r1, {obs("a", "A"), obs("b", "B")});
  expect_counts(apply(r2, {obs("a", "A"), obs("b", "B")}), 0, 0, 2);
  EXPECT_EQ(live("a").status_changed_run, r1) << "an unchanged re-observation keeps the stamp";
  EXPECT_EQ(live("a").last_seen_run, r2);
  apply(r3, {obs("a", "A")});
  EXPECT_EQ(mark_missing(db, vol, r3), 1);
  expect_consistent();
  EXPECT_EQ(live("b").status, "missing");
  EXPECT_EQ(live("b").status_changed_run, r3);
  EXPECT_EQ(live("b").last_seen_run, r3);
  expect_counts(apply(r4, {obs("a", "A"), obs("b", "B")}), 0, 1, 1);
  EXPECT_EQ(live("b").status, "present");
  EXPECT_EQ(live("b").status_changed_run, r4) << "reappearance";
  EXPECT_EQ(live("b").first_seen_run, r1);
  mark_offloaded(db, vol, "a", content_id("A"), r5);
  expect_consistent();
  EXPECT_EQ(live("a").status, "offloaded");
  EXPECT_EQ(live("a").status_changed_run, r5);
  EXPECT_EQ(live("a").last_seen_run, r5);
  apply(r6, {obs("b", "C")});
  auto hist = history_by_path(db, vol, "b");
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0].status_changed_run, r6) << "the superseded row";
  EXPECT_EQ(hist[1].status_changed_run, r6) << "the replacing row";
  EXPECT_EQ(live("a").status_changed_run, r5) << "other paths are untouched";
}

TEST_F(FilesStore, MarkMissingFlipsOnlyPresentRowsTheRunDidNotSee) {
  auto other = create_volume(db, "w", "/w").id;
  auto r1 = run(), r2 = run(), r3 = run();
  apply(r1, {obs("seen", "S"), obs("d/gone", "G"), obs("off", "O")});
  apply_index_batch(db, other, r1, {obs("elsewhere", "E")});
  EXPECT_EQ(mark_missing(db, vol, r2), 3) << "r2 saw nothing: every present row flips";
  expect_counts(apply(r3, {obs("seen", "S"), obs("off", "O")}), 0, 2, 0);
  mark_offloaded(db, vol, "off", content_id("O"), r3);
  auto r4 = run();
  apply(r4, {obs("seen", "S")});
  EXPECT_EQ(mark_missing(db, vol, r4), 0) << "missing rows are not flipped again, offloaded ones never";
  expect_consistent();
  EXPECT_EQ(live("seen").status, "present");
  EXPECT_EQ(live("off").status, "offloaded");
  EXPECT_EQ(live("off").last_seen_run, r3);
  EXPECT_EQ(live("d/gone").status, "missing");
  EXPECT_EQ(live("d/gone").status_changed_run, r2) << "an already missing row keeps its stamp";
  EXPECT_EQ(live("d/gone").last_seen_run, r2);
  auto e = live_row_by_path(db, other, "elsewhere");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, "present") << "another volume is never touched";
  auto r5 = run();
  apply(r5, {obs("off", "O")});
  EXPECT_EQ(live("off").status, "present");
  EXPECT_EQ(mark_missing(db, vol, r5), 1);
  EXPECT_EQ(live("seen").status, "missing");
  EXPECT_EQ(live("seen").status_changed_run, r5);
  EXPECT_EQ(live("off").status, "present");
}

TEST_F(FilesStore, MarkOffloadedRefusesAnythingButTheExactPresentRow) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("d/a", "A"), obs("d/b", "B"), obs("m", "M")});
  mark_missing(db, vol, r2);
  auto r3 = run();
  apply(r3, {obs("d/a", "A"), obs("d/b", "B")});
  auto before = test::dump_everything(db);
  EXPECT_THROW(mark_offloaded(db, vol, "d/a", content_id("B"), r3), Error) << "wrong content";
  EXPECT_THROW(mark_offloaded(db, vol, "d/zzz", content_id("A"), r3), Error) << "unknown name";
  EXPECT_THROW(mark_offloaded(db, vol, "nowhere/a", content_id("A"), r3), Error) << "unknown folder";
  EXPECT_THROW(mark_offloaded(db, vol, "m", content_id("M"), r3), Error) << "a missing row";
  EXPECT_EQ(test::dump_everything(db), before) << "a refusal changes nothing";
  mark_offloaded(db, vol, "d/a", content_id("A"), r3);
  auto after_first = test::dump_everything(db);
  try {
    mark_offloaded(db, vol, "d/a", content_id("A"), r3);
    FAIL() << "a second offload of the same row must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::refused);
  }
  EXPECT_EQ(test::dump_everything(db), after_first);
  expect_consistent();
}

TEST_F(FilesStore, ContentsAndObservationsCanNeverBeRewrittenOrDeleted) {
  apply(run(), {obs("a", "A")});
  auto before = test::dump_everything(db);
  EXPECT_THROW(db.execute("UPDATE contents SET size_bytes = 99"), Error);
  EXPECT_THROW(db.execute("UPDATE contents SET origin_run_id = 5"), Error);
  EXPECT_THROW(db.execute("DELETE FROM contents"), Error);
  EXPECT_THROW(db.execute("DELETE FROM files"), Error);
  EXPECT_THROW(db.execute("UPDATE files SET content_id = content_id + 1"), Error);
  EXPECT_THROW(db.execute("UPDATE files SET first_seen_run_id = first_seen_run_id"), Error);
  EXPECT_EQ(test::dump_everything(db), before);
}

TEST_F(FilesStore, OneDigestHasOneSizeAndADisagreementWritesNothing) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("a", "AAAA")});
  auto before = test::dump_everything(db);
  Observation liar = obs("b", "AAAA");
  liar.size = 5;
  try {
    apply_index_batch(db, vol, r2, {obs("new", "N"), obs("a", "AAAA"), liar});
    FAIL() << "a second size for a known digest must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::corrupt);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("entry 2"));
  }
  EXPECT_EQ(test::dump_everything(db), before) << "neither the new file nor the touch may survive";
  Observation first = obs("x", "XY"), second = obs("y", "XY");
  second.size = 3;
  EXPECT_THROW(apply_index_batch(db, vol, r2, {first, second}), Error) << "the disagreement within one batch";
  EXPECT_EQ(test::dump_everything(db), before);
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM contents").value_or(0), 1);
}

TEST_F(FilesStore, ABatchIsAllOrNothing) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("keep", "K")});
  mark_missing(db, vol, r2);
  auto r3 = run();
  auto before = test::dump_everything(db);
  Observation touch = obs("ghost", "G");
  touch.touch_only = true;  // a shallow touch needs a present row; "ghost" has none
  std::vector<Observation> batch{obs("a", "A"), obs("sub/b", "B"), obs("keep", "K2"), touch};
  try {
    apply_index_batch(db, vol, r3, batch);
    FAIL() << "the touch of a non-present row must fail the batch";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("entry 3"));
  }
  EXPECT_EQ(test::dump_everything(db), before);
  batch.pop_back();
  expect_counts(apply(r3, batch), 2, 1, 0);
}

TEST_F(FilesStore, OffloadRemovesTheFileFromFolderCountsAndHashes) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("d/a", "AAA"), obs("d/b", "BB"), obs("c", "C")});
  auto deep_before = db.query_rows("SELECT deep_blake3 FROM folders WHERE path = X''");
  EXPECT_EQ(root_count(), 3);
  mark_offloaded(db, vol, "d/a", content_id("AAA"), r2);
  expect_consistent();
  EXPECT_EQ(root_count(), 2);
  auto d = db.query_rows("SELECT file_count, cumulative_size, last_changed_run_id FROM folders WHERE path = ?",
                         {blob_of("d")});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0][0], Value{std::int64_t{1}});
  EXPECT_EQ(d[0][1], Value{std::int64_t{2}});
  EXPECT_EQ(d[0][2], Value{r2});
  EXPECT_NE(db.query_rows("SELECT deep_blake3 FROM folders WHERE path = X''"), deep_before);
}

TEST_F(FilesStore, AnOffloadedRowThatReappearsIsRevivedWithItsFirstSeen) {
  auto r1 = run(), r2 = run(), r3 = run();
  apply(r1, {obs("a", "A")});
  mark_offloaded(db, vol, "a", content_id("A"), r2);
  expect_counts(apply(r3, {obs("a", "A", 9)}), 0, 1, 0);
  auto a = live("a");
  EXPECT_EQ(a.status, "present");
  EXPECT_EQ(a.first_seen_run, r1);
  EXPECT_EQ(a.status_changed_run, r3);
  EXPECT_EQ(history_by_path(db, vol, "a").size(), 1u);
  EXPECT_EQ(root_count(), 1);
}

TEST_F(FilesStore, FolderTreeMatchesAFromScratchRecomputationAfterEveryChange) {
  std::vector<std::vector<Observation>> steps = {
      {obs("a/b/c/deep", "1"), obs("a/x", "22"), obs("top", "333")},
      {obs("a/b/c/deep", "4444")},
      {obs("a/b/sib", "1"), obs("z/new", "55555")},
      {obs("a/b/c/deep", "1")},
  };
  for (const auto& step : steps) apply(run(), step);
  auto r = run();
  apply(r, {obs("top", "333")});
  EXPECT_GT(mark_missing(db, vol, r), 0);
  expect_consistent();
  mark_offloaded(db, vol, "top", content_id("333"), run());
  expect_consistent();
  auto root = db.query_rows("SELECT file_count, cumulative_size FROM folders WHERE path = X''");
  ASSERT_EQ(root.size(), 1u);
  EXPECT_EQ(root[0][0], Value{std::int64_t{0}});
  EXPECT_EQ(root[0][1], Value{std::int64_t{0}});
  auto leaf = db.query_rows("SELECT shallow_blake3 FROM folders WHERE path = ?", {blob_of("a/b/c")});
  ASSERT_EQ(leaf.size(), 1u);
  EXPECT_EQ(test::blob_digest(leaf[0][0]), empty_folder_hash()) << "an emptied folder hashes as empty";
}

TEST_F(FilesStore, ProvenanceIsRecordedOnlyWhenTheContentIsCreated) {
  auto peer = db.query_i64("SELECT id FROM nodes").value_or(0);
  apply_index_batch(db, vol, run(), {obs("a", "A")}, {peer, 42});
  apply_index_batch(db, vol, run(), {obs("b", "A"), obs("c", "C")}, {std::nullopt, std::nullopt});
  auto rows = db.query_rows("SELECT origin_node_id, origin_run_id FROM contents ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], Value{peer});
  EXPECT_EQ(rows[0][1], Value{std::int64_t{42}}) << "an existing content keeps its first origin";
  EXPECT_EQ(rows[1][0], Value{});
  expect_consistent();
}

TEST_F(FilesStore, RawBytePathsRoundTrip) {
  std::string odd_dir = std::string("d\xff\xfe") + "\n";
  std::string path = odd_dir + "/na\nme\x80.bin";
  apply(run(), {obs(path, "X"), obs("plain", "Y")});
  auto row = live_row_by_path(db, vol, path);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->path, path);
  EXPECT_EQ(row->hash, blake3("X"));
  EXPECT_FALSE(live_row_by_path(db, vol, "d\xff\xfe/na\nme\x80.bin"));
  EXPECT_EQ(history_by_path(db, vol, path).size(), 1u);
}

TEST_F(FilesStore, SettleWalkFlipsExactlyTheListedPresentRowsAndStampsTheRest) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("seen", "S"), obs("d/gone", "G"), obs("off", "O"), obs("stale", "T")});
  mark_offloaded(db, vol, "off", content_id("O"), r2);
  auto r3 = run();
  std::vector<UnseenRow> unseen = {{"d/gone", content_id("G")},
                                   {"off", content_id("O")},
                                   {"stale", content_id("S")},
                                   {"nowhere/x", content_id("S")}};
  EXPECT_EQ(settle_walk(db, vol, r3, unseen), 1) << "only the present row with the listed content flips";
  expect_consistent();
  EXPECT_EQ(live("d/gone").status, "missing");
  EXPECT_EQ(live("d/gone").status_changed_run, r3);
  EXPECT_EQ(live("off").status, "offloaded");
  EXPECT_EQ(live("off").last_seen_run, r2) << "an offloaded row is neither flipped nor stamped";
  EXPECT_EQ(live("stale").status, "present") << "a listed row whose content differs is not flipped";
  EXPECT_EQ(live("seen").last_seen_run, r3);
  EXPECT_EQ(live("seen").status_changed_run, r1);
  EXPECT_EQ(live("d/gone").last_seen_run, r3);
}

// SQLite checkpoints the WAL right after a commit that grew it; a statement
// of the batch still on a row at that moment makes the checkpoint fail
// (SQLITE_LOCKED), and over a whole index the WAL grew to four times the
// database. The hook runs the same checkpoint SQLite's automatic one does.
TEST_F(FilesStore, TheCommitOfABatchCanBeCheckpointedAtOnce) {
  auto r1 = run(), r2 = run();
  apply(r1, {obs("d/a", "A"), obs("d/b", "B")});
  std::vector<int> results;
  sqlite3_wal_hook(
      db.handle(),
      [](void* out, sqlite3* handle, const char* name, int) {
        static_cast<std::vector<int>*>(out)->push_back(
            sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr));
        return SQLITE_OK;
      },
      &results);
  apply_index_batch(db, vol, r2, {obs("d/a", "A2"), obs("d/c", "C"), obs("e/f", "F")});
  sqlite3_wal_hook(db.handle(), nullptr, nullptr);
  ASSERT_FALSE(results.empty()) << "the batch committed nothing";
  for (int rc : results) EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errstr(rc);
}
