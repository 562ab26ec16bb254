// The connection contract (pragmas, refusals on open, the self node) and
// the guarantees the schema itself enforces, checked against a real
// database through raw SQL so no store function can paper over a missing
// constraint.
#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <string_view>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "store/runs.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool on_disk(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

fs::path sibling(const fs::path& p, const std::string& suffix) { return p.string() + suffix; }

// The message of the error a statement raises, or "" when it succeeds.
std::string sql_error(Db& db, const std::string& sql, const std::vector<Value>& args = {}) {
  try {
    db.execute(sql, args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Blob bytes(std::size_t n, std::uint8_t fill) { return Blob(n, fill); }
Blob text_blob(const std::string& s) { return Blob(s.begin(), s.end()); }

StoreOptions named(const std::string& node) {
  StoreOptions o;
  o.node_name = node;
  return o;
}

std::string error_of(const std::function<void()>& f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

class StoreSchema : public ::testing::Test {
 protected:
  test::TempDir dir;
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t vol = add_volume("photos");
  std::int64_t run = add_run("index", Value{}, "running", Value{});
  std::int64_t root = add_root_folder(vol);

  std::int64_t add_volume(const std::string& name) {
    db.execute("INSERT INTO volumes(name, path, created_at_ns) VALUES (?, '/v', 1)", {Value{name}});
    return db.last_insert_id();
  }
  std::int64_t add_run(const std::string& kind, const Value& dest, const std::string& status, const Value& ended) {
    db.execute("INSERT INTO runs(kind, volume_id, destination, started_at_ns, ended_at_ns, status) "
               "VALUES (?, ?, ?, 1, ?, ?)",
               {Value{kind}, Value{vol}, dest, ended, Value{status}});
    return db.last_insert_id();
  }
  std::int64_t add_root_folder(std::int64_t volume) {
    db.execute("INSERT INTO folders(volume_id, parent_id, path) VALUES (?, NULL, X'')", {Value{volume}});
    return db.last_insert_id();
  }
  std::int64_t add_content(std::uint8_t fill) {
    db.execute("INSERT INTO contents(blake3, size_bytes) VALUES (?, 10)", {Value{bytes(32, fill)}});
    return db.last_insert_id();
  }
  std::string insert_file(const std::string& name, std::int64_t content, const std::string& status) {
    return sql_error(db,
                     "INSERT INTO files(folder_id, name, content_id, mtime_ns, status, first_seen_run_id, "
                     "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?,?,?,1,?,?,?,?,1)",
                     {Value{root}, Value{text_blob(name)}, Value{content}, Value{status}, Value{run}, Value{run},
                      Value{run}});
  }
};

}  // namespace

// ---- reused prepared statements -----------------------------------------

TEST(StoreStatements, AReusedStatementStartsWithNoBindings) {
  test::TempDir dir;
  auto db = Db::open(dir.path() / "t.db");
  {
    Stmt st(db, "SELECT ?1");
    st.bind(1, std::int64_t{42});
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.i64(0), 42);
  }
  Stmt again(db, "SELECT ?1");
  ASSERT_TRUE(again.step());
  EXPECT_TRUE(again.is_null(0)) << "a value bound for an earlier use leaked into the next";
}

TEST(StoreStatements, AStatementLeftMidIterationStartsOverAndHoldsNoReadLock) {
  test::TempDir dir;
  auto db = Db::open(dir.path() / "t.db");
  db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3)");
  const char* sql = "SELECT x FROM t ORDER BY x";
  {
    Stmt st(db, sql);
    ASSERT_TRUE(st.step());
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.i64(0), 2);
  }
  // A statement still mid-iteration would pin the WAL: a truncating
  // checkpoint from another connection could not finish.
  auto writer = Db::open(dir.path() / "t.db");
  writer.exec("INSERT INTO t VALUES (4)");
  auto busy = writer.query_rows("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_EQ(std::get<std::int64_t>(busy.at(0).at(0)), 0) << "a reader still held the database";
  Stmt again(db, sql);
  ASSERT_TRUE(again.step());
  EXPECT_EQ(again.i64(0), 1) << "the reused statement did not start from the first row";
}

TEST(StoreStatements, TheSameTextCanRunNestedAndManyTextsStayCorrect) {
  test::TempDir dir;
  auto db = Db::open(dir.path() / "t.db");
  db.exec("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2)");
  std::int64_t pairs = 0;
  Stmt outer(db, "SELECT x FROM t");
  while (outer.step()) {
    Stmt inner(db, "SELECT x FROM t");
    while (inner.step()) pairs += outer.i64(0) * 10 + inner.i64(0);
  }
  EXPECT_EQ(pairs, 11 + 12 + 21 + 22);
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 300; ++i)  // more texts than are kept idle
      EXPECT_EQ(db.query_i64(fmt::format("SELECT {} + ?", i), {Value{std::int64_t{round}}}), i + round);
}

// Debug builds (the sanitizer run) refuse to commit while a statement is
// still on a row: that keeps SQLite from checkpointing after the commit.
// Release builds commit; the statement's read simply ends at its reset.
TEST(StoreStatements, ACommitWithAStatementStillOnARowFailsInDebugBuilds) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  auto& db = s.db();
  Tx tx(db);
  db.exec("INSERT INTO nodes(name, endpoint) VALUES ('peer', 'ssh://peer')");
  Stmt st(db, "SELECT name FROM nodes ORDER BY id");
  ASSERT_TRUE(st.step());
#ifndef NDEBUG
  EXPECT_THROW(tx.commit(), Error);
  st.reset();
  tx.commit();
#else
  tx.commit();
#endif
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM nodes WHERE endpoint IS NOT NULL"), 1);
}

// ---- connection contract -------------------------------------------------

TEST(StoreOpen, FixedPragmasAreInForceOnEveryOpen) {
  test::TempDir dir;
  for (int round = 0; round < 2; ++round) {  // fresh, then an existing database
    auto s = test::open_store(dir);
    auto& db = s.db();
    EXPECT_EQ(std::get<std::string>(db.query_rows("PRAGMA journal_mode")[0][0]), "wal") << round;
    EXPECT_EQ(db.query_i64("PRAGMA synchronous"), 2) << "synchronous=FULL, round " << round;
    EXPECT_EQ(db.query_i64("PRAGMA foreign_keys"), 1) << round;
    EXPECT_GT(db.query_i64("PRAGMA busy_timeout").value_or(0), 0) << round;
  }
}

// A database created before the page size was chosen keeps its own: the
// pragma only applies to a brand-new file and must not rewrite an old one.
TEST(StoreOpen, ANewDatabaseHas16KiBPagesAndAnOldOneKeepsItsPageSize) {
  test::TempDir dir;
  EXPECT_EQ(test::open_store(dir).db().query_i64("PRAGMA page_size"), 16384);
  auto old_path = dir.path() / "old.db";
  {
    auto raw = Db::open(old_path, {.create = true, .read_only = false});
    raw.exec("PRAGMA page_size=4096");
    raw.exec("PRAGMA journal_mode=WAL");
  }
  auto s = test::open_store(dir, "old.db");
  EXPECT_EQ(s.db().query_i64("PRAGMA page_size"), 4096);
  EXPECT_GE(s.db().query_i64("SELECT MAX(version) FROM schema_version").value_or(0), 1);
}

// SQLite names its temporary files etilqs_* and unlinks them at once; an
// open descriptor is the only trace.
static int open_sqlite_temp_files() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    n += !ec && target.string().find("etilqs_") != std::string::npos;
  }
  return n;
}

// A statement that may abort half-way journals the pages it changes. With
// 16 KiB pages SQLite's default moved that journal to a file in /var/tmp
// after four pages, and kept writing it there for the rest of the
// transaction (3.5 GB during a sync of 100k files).
TEST(StoreOpen, StatementJournalsOfOrdinarySizeStayInMemory) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  auto& db = s.db();
  db.exec("CREATE TABLE journal_probe (id INTEGER PRIMARY KEY, body BLOB, u INTEGER UNIQUE)");
  db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
          "INSERT INTO journal_probe SELECT i, zeroblob(1000), i FROM n");
  ASSERT_GT(db.query_i64("SELECT count(*) FROM dbstat WHERE name = 'journal_probe'").value_or(0), 8)
      << "the update below must change more than 64 KiB of pages";
  Tx tx(db);
  db.exec("UPDATE journal_probe SET u = u + 1000000");  // may abort on UNIQUE: journaled
  EXPECT_EQ(open_sqlite_temp_files(), 0);
  tx.commit();
}

TEST_F(StoreSchema, ForeignKeysAreEnforced) {
  EXPECT_THAT(insert_file("a", 4242, "present"), HasSubstr("FOREIGN KEY constraint failed"));
  EXPECT_THAT(sql_error(db, "INSERT INTO runs_audit(run_id, transition, at_ns) VALUES (777, 'finish', 1)"),
              HasSubstr("FOREIGN KEY constraint failed"));
}

TEST_F(StoreSchema, EveryTableIsStrictWithOnlyIntegerTextAndBlobColumns) {
  auto tables = db.query_rows(
      "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
      "AND name NOT LIKE 'sqlite_%' ORDER BY name");
  std::set<std::string> names;
  for (const auto& t : tables) {
    auto name = std::get<std::string>(t[0]);
    names.insert(name);
    EXPECT_EQ(std::get<std::int64_t>(t[1]), 1) << name << " is not STRICT";
    auto cols = db.query_rows("SELECT name, type FROM pragma_table_info(?)", {Value{name}});
    EXPECT_FALSE(cols.empty()) << name;
    for (const auto& c : cols) {
      auto type = std::get<std::string>(c[1]);
      EXPECT_TRUE(type == "INTEGER" || type == "TEXT" || type == "BLOB")
          << name << "." << std::get<std::string>(c[0]) << " has type " << type;
    }
  }
  for (const char* t : {"schema_version", "volumes", "nodes", "runs", "runs_audit", "hook_runs", "contents",
                        "folders", "files"})
    EXPECT_TRUE(names.count(t)) << t;
  // STRICT is not decoration: a text value bound to an INTEGER column is refused.
  EXPECT_THAT(sql_error(db, "INSERT INTO volumes(name, path, created_at_ns) VALUES ('x', '/x', 'yesterday')"),
              HasSubstr("cannot store TEXT value in INTEGER column"));
}

TEST_F(StoreSchema, EveryHashColumnAcceptsExactlyThirtyTwoBytes) {
  // Find the hash columns by name so a new one cannot slip past this test.
  std::set<std::string> found;
  for (const auto& t : db.query_rows("SELECT name FROM pragma_table_list WHERE schema='main' AND type='table'")) {
    auto table = std::get<std::string>(t[0]);
    for (const auto& c : db.query_rows("SELECT name FROM pragma_table_info(?)", {Value{table}}))
      if (std::get<std::string>(c[0]).find("blake3") != std::string::npos)
        found.insert(table + "." + std::get<std::string>(c[0]));
  }
  EXPECT_EQ(found, (std::set<std::string>{"contents.blake3", "folders.deep_blake3", "folders.shallow_blake3"}))
      << "a hash column was added or removed: cover it below";

  for (std::size_t n : {31u, 33u, 0u}) {
    EXPECT_THAT(sql_error(db, "INSERT INTO contents(blake3, size_bytes) VALUES (?, 1)", {Value{bytes(n, 7)}}),
                HasSubstr("CHECK constraint failed")) << n;
    for (const char* col : {"shallow_blake3", "deep_blake3"})
      EXPECT_THAT(sql_error(db, fmt::format("UPDATE folders SET {} = ? WHERE id = ?", col),
                            {Value{bytes(n, 7)}, Value{root}}),
                  HasSubstr("CHECK constraint failed")) << col << " " << n;
  }
  // A hash stored as hex text is the classic mistake: refused too.
  EXPECT_NE(sql_error(db, "INSERT INTO contents(blake3, size_bytes) VALUES (?, 1)", {Value{std::string(32, 'a')}}), "");
  EXPECT_EQ(sql_error(db, "INSERT INTO contents(blake3, size_bytes) VALUES (?, 1)", {Value{bytes(32, 7)}}), "");
  EXPECT_EQ(sql_error(db, "UPDATE folders SET shallow_blake3 = ?, deep_blake3 = ? WHERE id = ?",
                      {Value{bytes(32, 1)}, Value{bytes(32, 2)}, Value{root}}),
            "");
}

TEST_F(StoreSchema, BooleansAreZeroOrOne) {
  // Booleans have no telling name, so the DDL's own "x IN (0,1)" checks are
  // listed and pinned: a new boolean column must be added here.
  std::set<std::string> found;
  std::regex in01(R"((\w+) IN \(0, ?1\))");
  for (const auto& t : db.query_rows("SELECT name, sql FROM sqlite_master WHERE type = 'table'")) {
    auto sql = std::get<std::string>(t[1]);
    for (std::sregex_iterator it(sql.begin(), sql.end(), in01), end; it != end; ++it)
      found.insert(std::get<std::string>(t[0]) + "." + (*it)[1].str());
  }
  EXPECT_EQ(found, (std::set<std::string>{"runs.shallow", "hook_runs.changed", "destination_run_ids_history.verified",
                                          "destination_run_ids_history.rewind"}))
      << "a boolean column was added or removed: cover it below";
  // The advance log has no foreign keys, so its booleans are tested in place.
  for (std::string_view col : {"verified", "rewind"})
    for (std::int64_t v : {0, 1, 2, -1}) {
      auto err = sql_error(db,
                           "INSERT INTO destination_run_ids_history(volume_id, destination, origin_node_id, "
                           "origin_run_id, at_ns, verified, rewind) VALUES (1, 'nas', 1, 1, 1, ?, ?)",
                           {Value{col == "verified" ? v : 0}, Value{col == "rewind" ? v : 0}});
      if (v == 0 || v == 1) EXPECT_EQ(err, "") << col << "=" << v;
      else EXPECT_THAT(err, HasSubstr("CHECK constraint failed")) << col << "=" << v;
    }
  for (std::int64_t v : {2, -1}) {
    EXPECT_THAT(sql_error(db, "UPDATE runs SET shallow = ? WHERE id = ?", {Value{v}, Value{run}}),
                HasSubstr("CHECK constraint failed"));
    EXPECT_THAT(sql_error(db,
                          "INSERT INTO hook_runs(volume_id, trigger, changed, started_at_ns, status) "
                          "VALUES (?, 'interval', ?, 1, 'running')",
                          {Value{vol}, Value{v}}),
                HasSubstr("CHECK constraint failed"));
  }
  for (const Value& v : {Value{std::int64_t{0}}, Value{std::int64_t{1}}, Value{}})
    EXPECT_EQ(sql_error(db, "UPDATE runs SET shallow = ? WHERE id = ?", {v, Value{run}}), "");
  for (std::int64_t v : {0, 1})
    EXPECT_EQ(sql_error(db,
                        "INSERT INTO hook_runs(volume_id, trigger, changed, started_at_ns, status) "
                        "VALUES (?, 'interval', ?, 1, 'running')",
                        {Value{vol}, Value{v}}),
              "");
}

TEST_F(StoreSchema, RunKindAndStatusAreClosedSets) {
  for (auto k : kAllRunKinds) {
    Value dest = kind_has_destination(k) ? Value{std::string("nas")} : Value{};
    EXPECT_EQ(sql_error(db,
                        "INSERT INTO runs(kind, volume_id, destination, started_at_ns, status) "
                        "VALUES (?, ?, ?, 1, 'running')",
                        {Value{std::string(to_string(k))}, Value{vol}, dest}),
              "")
        << to_string(k);
  }
  for (const char* kind : {"backup", "INDEX", ""})
    EXPECT_THAT(sql_error(db, "INSERT INTO runs(kind, started_at_ns, status) VALUES (?, 1, 'running')",
                          {Value{std::string(kind)}}),
                HasSubstr("CHECK constraint failed"))
        << kind;
  for (const char* status : {"done", "Success", "cancelled"})
    EXPECT_THAT(sql_error(db, "INSERT INTO runs(kind, started_at_ns, ended_at_ns, status) VALUES ('index', 1, 2, ?)",
                          {Value{std::string(status)}}),
                HasSubstr("CHECK constraint failed"))
        << status;
  EXPECT_THAT(sql_error(db, "UPDATE runs SET changed_count = -1 WHERE id = ?", {Value{run}}),
              HasSubstr("CHECK constraint failed"));
}

TEST_F(StoreSchema, DestinationIsRequiredExactlyForDestinationKinds) {
  for (auto k : kAllRunKinds)
    for (const Value& dest : {Value{}, Value{std::string()}, Value{std::string("nas")}}) {
      // Destination kinds need a non-empty name; the others need NULL (not even '').
      bool ok = kind_has_destination(k) ? std::holds_alternative<std::string>(dest) && !std::get<std::string>(dest).empty()
                                        : std::holds_alternative<std::monostate>(dest);
      auto err = sql_error(db,
                           "INSERT INTO runs(kind, volume_id, destination, started_at_ns, status) "
                           "VALUES (?, ?, ?, 1, 'running')",
                           {Value{std::string(to_string(k))}, Value{vol}, dest});
      if (ok) EXPECT_EQ(err, "") << to_string(k);
      else EXPECT_THAT(err, HasSubstr("CHECK constraint failed")) << to_string(k);
    }
  // The two classic mistakes, spelled out.
  EXPECT_NE(sql_error(db, "INSERT INTO runs(kind, destination, started_at_ns, status) VALUES ('index','nas',1,'running')"),
            "");
  EXPECT_NE(sql_error(db, "INSERT INTO runs(kind, destination, started_at_ns, status) VALUES ('sync',NULL,1,'running')"),
            "");
}

TEST_F(StoreSchema, EndedAtIsNullExactlyWhileRunning) {
  for (auto s : {RunStatus::running, RunStatus::success, RunStatus::partial, RunStatus::failed, RunStatus::refused,
                 RunStatus::aborted})
    for (const Value& ended : {Value{}, Value{std::int64_t{5}}}) {
      bool ok = (s == RunStatus::running) == std::holds_alternative<std::monostate>(ended);
      auto err = sql_error(db, "INSERT INTO runs(kind, started_at_ns, ended_at_ns, status) VALUES ('index', 1, ?, ?)",
                           {ended, Value{std::string(to_string(s))}});
      if (ok) EXPECT_EQ(err, "") << to_string(s);
      else EXPECT_THAT(err, HasSubstr("CHECK constraint failed")) << to_string(s);
    }
  // The same rule binds hook runs.
  EXPECT_THAT(sql_error(db,
                        "INSERT INTO hook_runs(volume_id, trigger, changed, started_at_ns, ended_at_ns, status) "
                        "VALUES (?, 'interval', 0, 1, 2, 'running')",
                        {Value{vol}}),
              HasSubstr("CHECK constraint failed"));
  EXPECT_THAT(sql_error(db,
                        "INSERT INTO hook_runs(volume_id, trigger, changed, started_at_ns, ended_at_ns, status) "
                        "VALUES (?, 'interval', 0, 1, NULL, 'success')",
                        {Value{vol}}),
              HasSubstr("CHECK constraint failed"));
  // Un-finishing a run is refused by the same CHECK.
  auto done = add_run("index", Value{}, "success", Value{std::int64_t{9}});
  EXPECT_THAT(sql_error(db, "UPDATE runs SET status = 'running' WHERE id = ?", {Value{done}}),
              HasSubstr("CHECK constraint failed"));
}

TEST_F(StoreSchema, HookTriggerIsCoupledToTheTriggeringRun) {
  const char* sql =
      "INSERT INTO hook_runs(volume_id, trigger, triggering_run_id, changed, started_at_ns, status) "
      "VALUES (?, ?, ?, 0, 1, 'running')";
  EXPECT_EQ(sql_error(db, sql, {Value{vol}, Value{std::string("change")}, Value{run}}), "");
  EXPECT_EQ(sql_error(db, sql, {Value{vol}, Value{std::string("interval")}, Value{}}), "");
  EXPECT_THAT(sql_error(db, sql, {Value{vol}, Value{std::string("change")}, Value{}}),
              HasSubstr("CHECK constraint failed"));
  EXPECT_THAT(sql_error(db, sql, {Value{vol}, Value{std::string("interval")}, Value{run}}),
              HasSubstr("CHECK constraint failed"));
  EXPECT_THAT(sql_error(db, sql, {Value{vol}, Value{std::string("hourly")}, Value{}}),
              HasSubstr("CHECK constraint failed"));
}

TEST_F(StoreSchema, RunsAuditIsInsertOnly) {
  db.execute("INSERT INTO runs_audit(run_id, transition, at_ns, note) VALUES (?, 'finish', 5, 'success')",
             {Value{run}});
  auto id = db.last_insert_id();
  auto before = db.query_rows("SELECT * FROM runs_audit WHERE id = ?", {Value{id}});
  EXPECT_THAT(sql_error(db, "UPDATE runs_audit SET note = 'failed' WHERE id = ?", {Value{id}}),
              HasSubstr("insert-only"));
  EXPECT_THAT(sql_error(db, "DELETE FROM runs_audit WHERE id = ?", {Value{id}}), HasSubstr("insert-only"));
  EXPECT_THAT(sql_error(db, "DELETE FROM runs_audit"), HasSubstr("insert-only"));
  EXPECT_EQ(db.query_rows("SELECT * FROM runs_audit WHERE id = ?", {Value{id}}), before);
}

TEST_F(StoreSchema, RunsAreNeverDeleted) {
  EXPECT_THAT(sql_error(db, "DELETE FROM runs WHERE id = ?", {Value{run}}), HasSubstr("never deleted"));
  EXPECT_THAT(sql_error(db, "DELETE FROM runs"), HasSubstr("never deleted"));
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM runs WHERE id = ?", {Value{run}}), 1);
  // Finishing is an update, and stays possible.
  EXPECT_EQ(sql_error(db, "UPDATE runs SET status = 'success', ended_at_ns = 2 WHERE id = ?", {Value{run}}), "");
}

TEST_F(StoreSchema, ContentsAreAppendOnlyAndUniqueByDigest) {
  auto c = add_content(1);
  auto before = db.query_rows("SELECT * FROM contents WHERE id = ?", {Value{c}});
  EXPECT_THAT(sql_error(db, "UPDATE contents SET size_bytes = 11 WHERE id = ?", {Value{c}}), HasSubstr("append-only"));
  EXPECT_THAT(sql_error(db, "UPDATE contents SET blake3 = ? WHERE id = ?", {Value{bytes(32, 9)}, Value{c}}),
              HasSubstr("append-only"));
  EXPECT_THAT(sql_error(db, "DELETE FROM contents WHERE id = ?", {Value{c}}), HasSubstr("append-only"));
  EXPECT_THAT(sql_error(db, "INSERT INTO contents(blake3, size_bytes) VALUES (?, 99)", {Value{bytes(32, 1)}}),
              HasSubstr("UNIQUE constraint failed"));
  EXPECT_THAT(sql_error(db, "INSERT INTO contents(blake3, size_bytes) VALUES (?, -1)", {Value{bytes(32, 3)}}),
              HasSubstr("CHECK constraint failed"));
  EXPECT_EQ(db.query_rows("SELECT * FROM contents WHERE id = ?", {Value{c}}), before);
}

TEST_F(StoreSchema, FileRowsKeepTheirIdentityAndAreNeverDeleted) {
  auto c1 = add_content(1), c2 = add_content(2);
  ASSERT_EQ(insert_file("a.jpg", c1, "present"), "");
  const char* where = " WHERE folder_id = ? AND name = ?";
  std::vector<Value> key{Value{root}, Value{text_blob("a.jpg")}};
  auto before = db.query_rows(std::string("SELECT * FROM files") + where, key);
  auto other_run = add_run("index", Value{}, "running", Value{});
  auto with = [&](Value v) {
    std::vector<Value> args{std::move(v)};
    args.insert(args.end(), key.begin(), key.end());
    return args;
  };
  EXPECT_THAT(sql_error(db, std::string("UPDATE files SET content_id = ?") + where, with(Value{c2})),
              HasSubstr("never changes"));
  EXPECT_THAT(sql_error(db, std::string("UPDATE files SET name = ?") + where, with(Value{text_blob("b.jpg")})),
              HasSubstr("never changes"));
  auto other_root = add_root_folder(add_volume("docs"));
  EXPECT_THAT(sql_error(db, std::string("UPDATE files SET folder_id = ?") + where, with(Value{other_root})),
              HasSubstr("never changes"));
  EXPECT_THAT(sql_error(db, std::string("UPDATE files SET first_seen_run_id = ?") + where, with(Value{other_run})),
              HasSubstr("never changes"));
  EXPECT_THAT(sql_error(db, std::string("DELETE FROM files") + where, key), HasSubstr("never deleted"));
  EXPECT_THAT(sql_error(db, "DELETE FROM files"), HasSubstr("never deleted"));
  EXPECT_EQ(db.query_rows(std::string("SELECT * FROM files") + where, key), before);
  // Observation columns do move.
  EXPECT_EQ(sql_error(db, std::string("UPDATE files SET status = 'missing', last_seen_run_id = ?, "
                                      "status_changed_run_id = ?") + where,
                      {Value{other_run}, Value{other_run}, key[0], key[1]}),
            "");
  EXPECT_THAT(sql_error(db, std::string("UPDATE files SET status = 'gone'") + where, key),
              HasSubstr("CHECK constraint failed"));
}

TEST_F(StoreSchema, AtMostOneLiveRowPerPath) {
  auto c1 = add_content(1), c2 = add_content(2), c3 = add_content(3), c4 = add_content(4);
  ASSERT_EQ(insert_file("a", c1, "present"), "");
  for (const char* live : {"present", "missing", "offloaded"})
    EXPECT_THAT(insert_file("a", c2, live), HasSubstr("UNIQUE constraint failed")) << live;
  EXPECT_EQ(insert_file("b", c2, "present"), "") << "another name in the same folder is another path";
  EXPECT_EQ(insert_file("a", c2, "superseded"), "");
  EXPECT_EQ(insert_file("a", c3, "superseded"), "") << "any number of superseded rows";
  // Supersede the live row; now exactly one new live row fits.
  db.execute("UPDATE files SET status = 'superseded' WHERE folder_id = ? AND name = ? AND content_id = ?",
             {Value{root}, Value{text_blob("a")}, Value{c1}});
  EXPECT_EQ(insert_file("a", c4, "present"), "");
  EXPECT_THAT(sql_error(db, "UPDATE files SET status = 'present' WHERE folder_id = ? AND name = ? AND content_id = ?",
                        {Value{root}, Value{text_blob("a")}, Value{c1}}),
              HasSubstr("UNIQUE constraint failed"))
      << "reviving an old row while another is live";
  EXPECT_EQ(db.query_i64("SELECT count(*) FROM files WHERE name = ? AND status != 'superseded'",
                         {Value{text_blob("a")}}),
            1);
}

TEST_F(StoreSchema, PathsAndNamesAreStoredAsBytes) {
  // Names are filesystem bytes, not text: invalid UTF-8 must round-trip.
  Blob raw{'a', 0xff, 0xfe, 'b'};
  auto c = add_content(1);
  ASSERT_EQ(sql_error(db,
                      "INSERT INTO files(folder_id, name, content_id, mtime_ns, status, first_seen_run_id, "
                      "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?,?,?,1,'present',?,?,?,1)",
                      {Value{root}, Value{raw}, Value{c}, Value{run}, Value{run}, Value{run}}),
            "");
  auto rows = db.query_rows("SELECT name FROM files WHERE content_id = ?", {Value{c}});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::get<Blob>(rows[0][0]), raw);
  EXPECT_THAT(sql_error(db,
                        "INSERT INTO folders(volume_id, parent_id, path) VALUES (?, ?, 'text/path')",
                        {Value{vol}, Value{root}}),
              HasSubstr("cannot store TEXT value in BLOB column"));
  // Only the root has no parent, and the root's path is empty.
  EXPECT_THAT(sql_error(db, "INSERT INTO folders(volume_id, parent_id, path) VALUES (?, NULL, X'61')", {Value{vol}}),
              HasSubstr("CHECK constraint failed"));
}

// ---- the self node -------------------------------------------------------

TEST(StoreSelfNode, ResolveNodeNameSanitisesTheHostname) {
  EXPECT_EQ(resolve_node_name(std::nullopt, "my host.local"), "my-host-local");
  EXPECT_EQ(resolve_node_name(std::nullopt, "--x"), "x");
  EXPECT_EQ(resolve_node_name(std::nullopt, "_-_box_1"), "box_1");
  EXPECT_EQ(resolve_node_name(std::nullopt, "laptop"), "laptop");
  for (const std::string host : {"", "!!!", "---", "__"}) {
    auto name = resolve_node_name(std::nullopt, host);
    EXPECT_THAT(name, ::testing::MatchesRegex("node-[0-9a-f]{12}")) << "host \"" << host << "\"";
    EXPECT_EQ(name, resolve_node_name(std::nullopt, host)) << "must be deterministic";
    EXPECT_TRUE(valid_name(name));
  }
  EXPECT_NE(resolve_node_name(std::nullopt, ""), resolve_node_name(std::nullopt, "!!!"))
      << "derived from the raw hostname";
  // A configured name wins over the hostname when it is valid ...
  EXPECT_EQ(resolve_node_name(std::string("nas-2"), "whatever"), "nas-2");
  // ... and is an error when it is not: never silently rewritten.
  for (const std::string bad : {"", "-lead", "_lead", "has space", "dot.ted", "slash/x"}) {
    ErrorKind kind = ErrorKind::internal;
    EXPECT_THAT(error_of([&] { resolve_node_name(bad, "host"); }, &kind), HasSubstr("node_name")) << bad;
    EXPECT_EQ(kind, ErrorKind::config) << bad;
  }
}

TEST(StoreSelfNode, ConfiguredNameSeedsExactlyOneSelfRow) {
  test::TempDir dir;
  std::int64_t id = 0;
  {
    auto s = Store::open(dir / "index.db", named("laptop-1"));
    EXPECT_EQ(s.self_node_name(), "laptop-1");
    id = s.self_node_id();
    auto rows = s.db().query_rows("SELECT id, name FROM nodes WHERE endpoint IS NULL");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::get<std::int64_t>(rows[0][0]), id);
    EXPECT_EQ(std::get<std::string>(rows[0][1]), "laptop-1");
  }
  // Reopening (even with another configured name) keeps the one self row.
  auto s = Store::open(dir / "index.db", named("renamed"));
  EXPECT_EQ(s.self_node_id(), id);
  EXPECT_EQ(s.self_node_name(), "laptop-1");
  EXPECT_EQ(s.db().query_i64("SELECT count(*) FROM nodes WHERE endpoint IS NULL"), 1);
  // The schema itself refuses a second self row; peers (with an endpoint) are fine.
  EXPECT_THAT(sql_error(s.db(), "INSERT INTO nodes(name, endpoint) VALUES ('other', NULL)"),
              HasSubstr("UNIQUE constraint failed"));
  EXPECT_EQ(sql_error(s.db(), "INSERT INTO nodes(name, endpoint) VALUES ('peer', 'https://peer:7000')"), "");
  EXPECT_EQ(sql_error(s.db(), "INSERT INTO nodes(name, endpoint) VALUES ('peer2', 'https://peer2:7000')"), "");
}

TEST(StoreSelfNode, WithoutAConfiguredNameTheSanitisedHostnameIsUsed) {
  test::TempDir dir;
  auto s = Store::open(dir / "index.db");
  EXPECT_EQ(s.self_node_name(), resolve_node_name(std::nullopt, host_name()));
  EXPECT_TRUE(valid_name(s.self_node_name()));
  EXPECT_EQ(s.db().query_i64("SELECT count(*) FROM nodes WHERE endpoint IS NULL"), 1);
}

TEST(StoreSelfNode, InvalidConfiguredNameIsAnErrorAndCreatesNothing) {
  test::TempDir dir;
  ErrorKind kind = ErrorKind::internal;
  auto msg = error_of([&] { Store::open(dir / "index.db", named("bad name")); }, &kind);
  EXPECT_THAT(msg, HasSubstr("node_name"));
  EXPECT_EQ(kind, ErrorKind::config);
  EXPECT_TRUE(fs::is_empty(dir.path())) << "a config error must not leave a database behind";
}

// ---- refusals on open ----------------------------------------------------

TEST(StoreOpen, AFileThatIsNotSQLiteIsRefusedAndLeftByteIdentical) {
  test::TempDir dir;
  for (const std::string& content : {std::string("hello, this is my shopping list\nmilk\neggs\n"), std::string("abc"),
                                    std::string("SQLite format 2\0garbage after", 29)}) {
    auto path = dir / "index.db";
    write_bytes(path, content);
    ErrorKind kind = ErrorKind::internal;
    auto msg = error_of([&] { Store::open(path, named("n")); }, &kind);
    EXPECT_THAT(msg, HasSubstr("is not a squirrel database")) << content;
    EXPECT_THAT(msg, HasSubstr(path.string()));
    EXPECT_EQ(kind, ErrorKind::corrupt);
    EXPECT_EQ(read_bytes(path), content);
    EXPECT_FALSE(on_disk(sibling(path, "-wal")));
    EXPECT_FALSE(on_disk(sibling(path, "-shm")));
    EXPECT_FALSE(on_disk(sibling(path, "-journal")));
    EXPECT_FALSE(on_disk(dir / "backups"));
  }
}

TEST(StoreOpen, AnotherProgramsSQLiteDatabaseIsRefusedAndLeftByteIdentical) {
  test::TempDir dir;
  auto path = dir / "app.sqlite";
  {
    auto raw = Db::open(path);
    raw.exec("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me');");
  }
  auto before = read_bytes(path);
  ASSERT_FALSE(before.empty());
  auto msg = error_of([&] { Store::open(path, named("n")); });
  EXPECT_THAT(msg, HasSubstr("not a squirrel database"));
  EXPECT_EQ(read_bytes(path), before) << "neither tables added nor the journal mode switched";
  EXPECT_FALSE(on_disk(sibling(path, "-wal")));
  EXPECT_FALSE(on_disk(sibling(path, "-shm")));
}

TEST(StoreOpen, AnEmptyFileIsAFreshDatabase) {
  test::TempDir dir;
  write_bytes(dir / "index.db", "");
  auto s = Store::open(dir / "index.db", named("n"));
  EXPECT_EQ(s.migration().from, 0);
  EXPECT_EQ(schema_version(s.db()), current_schema_version());
}

TEST(StoreOpen, AMissingDirectoryIsAnErrorAndIsNotCreated) {
  test::TempDir dir;
  ErrorKind kind = ErrorKind::internal;
  auto msg = error_of([&] { Store::open(dir / "nope" / "index.db", named("n")); }, &kind);
  EXPECT_THAT(msg, HasSubstr("does not exist"));
  EXPECT_EQ(kind, ErrorKind::not_found);
  EXPECT_FALSE(on_disk(dir / "nope"));
  EXPECT_NE(error_of([] { Store::open("/proc/sq-test/index.db", named("n")); }), "");
  EXPECT_FALSE(on_disk("/proc/sq-test"));
}

TEST(StoreOpen, AnUnwritableDirectoryIsAnErrorBeforeAnythingIsCreated) {
  // Tests run as root, which chmod cannot stop; /proc and /sys refuse even root.
  for (const char* path : {"/proc/index.db", "/sys/index.db"}) {
    auto msg = error_of([&] { Store::open(path, named("n")); });
    EXPECT_THAT(msg, HasSubstr(path)) << "the message names the database";
    EXPECT_THAT(msg, ::testing::AnyOf(HasSubstr("not writable"), HasSubstr("cannot write")));
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
      EXPECT_FALSE(on_disk(std::string(path) + suffix)) << path << suffix;
  }
}

TEST(StoreOpen, WithoutCreateAMissingDatabaseIsAnErrorAndNotCreated) {
  test::TempDir dir;
  StoreOptions o = named("n");
  o.create = false;
  ErrorKind kind = ErrorKind::internal;
  auto msg = error_of([&] { Store::open(dir / "index.db", o); }, &kind);
  EXPECT_THAT(msg, HasSubstr("no database at"));
  EXPECT_EQ(kind, ErrorKind::not_found);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(StoreOpen, ADirectoryIsNotADatabase) {
  test::TempDir dir;
  fs::create_directory(dir / "index.db");
  ErrorKind kind = ErrorKind::internal;
  EXPECT_THAT(error_of([&] { Store::open(dir / "index.db", named("n")); }, &kind), HasSubstr("is a directory"));
  EXPECT_EQ(kind, ErrorKind::usage);
}
