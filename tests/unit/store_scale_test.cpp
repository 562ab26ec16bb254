// One statement that changes many rows inside a transaction keeps the old
// pages in a statement journal, which SQLite moves to a temporary file once
// it outgrows its spill threshold. A spill threshold raised through
// SQLITE_CONFIG_STMTJRNL_SPILL made SQLite 3.40 fail such statements with
// "database or disk is full" (a re-index of 100k files did), so the store
// must leave it at SQLite's default. This is the statement shape, at a size
// whose journal (about 15 MB) spills under every threshold tried.
#include <gtest/gtest.h>

#include "store/db.hpp"
#include "test_util.hpp"

namespace {

using sq::store::Db;
using sq::store::Value;

TEST(StoreScale, AWholeVolumeUpdateOfManyRowsSucceeds) {
  sq::test::TempDir dir;
  auto db = Db::open(dir / "big.db", {});
  db.exec("PRAGMA page_size=16384");
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("CREATE TABLE t(folder INTEGER NOT NULL, name BLOB NOT NULL, seen INTEGER NOT NULL, pad BLOB NOT NULL, "
          "PRIMARY KEY(folder, name)) WITHOUT ROWID, STRICT");
  constexpr std::int64_t kRows = 60000;
  db.exec("BEGIN");
  db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO t SELECT i / 100, "
             "CAST(printf('f%08d.bin', i) AS BLOB), 1, randomblob(120) FROM n",
             {Value{kRows}});
  db.exec("COMMIT");
  // An earlier write in the same transaction: the UPDATE may abort half-way
  // (a NOT NULL or CHECK failure), so it gets a statement journal.
  db.exec("BEGIN");
  db.execute("INSERT INTO t VALUES (-1, X'00', 1, X'00')");
  ASSERT_NO_THROW(db.execute("UPDATE t SET seen = ?1 WHERE seen != ?1 AND folder IN (SELECT DISTINCT folder FROM t)",
                             {Value{std::int64_t{2}}}));
  db.exec("COMMIT");
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM t WHERE seen = 2").value_or(-1), kRows + 1);
}

}  // namespace
