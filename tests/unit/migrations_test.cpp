// Forward-only migrations: a fresh database is built without a snapshot,
// an existing one is snapshotted once before its first step, every step
// commits with its version row or not at all, a newer database is refused
// untouched, and routine-snapshot rotation never deletes anything else.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "store/migrations.hpp"
#include "store/snapshots.hpp"
#include "store/volumes.hpp"
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

void touch(const fs::path& p, const std::string& content = "x") {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

bool on_disk(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
  return out;
}

std::vector<std::int64_t> versions(Db& db) {
  std::vector<std::int64_t> out;
  for (const auto& r : db.query_rows("SELECT version FROM schema_version ORDER BY version"))
    out.push_back(std::get<std::int64_t>(r[0]));
  return out;
}

bool has_table(Db& db, const std::string& name) {
  return db.query_i64("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", {Value{name}}) == 1;
}

StoreOptions options(const std::vector<Migration>* registry = nullptr, const fs::path& snapshots = {}) {
  StoreOptions o;
  o.node_name = "testnode";
  o.registry = registry;
  o.snapshot_dir = snapshots;
  return o;
}

// The real v1 followed by a test step.
std::vector<Migration> registry_with(std::function<void(Db&)> v2) {
  return {migrations().at(0), Migration{2, "test step", std::move(v2)}};
}

void create_table_v2(Db& db) { db.exec("CREATE TABLE test_v2 (id INTEGER PRIMARY KEY, note TEXT) STRICT"); }

// A v1 database on disk holding one volume (built by the real v1 step only,
// whatever the current version is).
void make_v1(const fs::path& path) {
  static const std::vector<Migration> v1_only{migrations().at(0)};
  auto s = Store::open(path, options(&v1_only));
  create_volume(s.db(), "photos", "/srv/photos");
}

}  // namespace

TEST(Migrations, RegistryIsStrictlyAscendingAndEndsAtTheCurrentVersion) {
  const auto& reg = migrations();
  ASSERT_FALSE(reg.empty());
  EXPECT_EQ(reg.front().version, 1);
  for (std::size_t i = 1; i < reg.size(); ++i) EXPECT_EQ(reg[i].version, reg[i - 1].version + 1);
  EXPECT_EQ(current_schema_version(), reg.back().version);
}

TEST(Migrations, FreshDatabaseMigratesToCurrentWithoutASnapshot) {
  test::TempDir dir;
  std::vector<std::int64_t> expected;
  for (const auto& m : migrations()) expected.push_back(m.version);
  {
    auto s = Store::open(dir / "index.db", options());
    EXPECT_EQ(s.migration().from, 0);
    EXPECT_EQ(s.migration().to, current_schema_version());
    EXPECT_TRUE(s.migration().snapshot.empty());
    EXPECT_EQ(schema_version(s.db()), current_schema_version());
    EXPECT_EQ(versions(s.db()), expected);
  }
  EXPECT_FALSE(on_disk(dir / "backups")) << "a fresh database has nothing worth snapshotting";
  // An up-to-date database is opened as is: no step, no snapshot.
  auto s = Store::open(dir / "index.db", options());
  EXPECT_EQ(s.migration().from, current_schema_version());
  EXPECT_EQ(s.migration().to, current_schema_version());
  EXPECT_TRUE(s.migration().snapshot.empty());
  EXPECT_EQ(versions(s.db()), expected);
  EXPECT_FALSE(on_disk(dir / "backups"));
}

TEST(Migrations, NewerDatabaseIsRefusedAndLeftUnchanged) {
  test::TempDir dir;
  auto path = dir / "index.db";
  make_v1(path);
  {
    auto raw = Db::open(path);
    raw.execute("INSERT INTO schema_version(version) VALUES (?)", {Value{std::int64_t{current_schema_version() + 1}}});
  }
  auto before = read_bytes(path);
  ErrorKind kind = ErrorKind::internal;
  std::string msg;
  try {
    Store::open(path, options());
  } catch (const Error& e) {
    msg = e.what();
    kind = e.kind();
  }
  EXPECT_THAT(msg, HasSubstr("upgrade squirrel"));
  EXPECT_THAT(msg, HasSubstr(fmt::format("v{}", current_schema_version() + 1)));
  EXPECT_EQ(kind, ErrorKind::refused);
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(on_disk(path.string() + "-wal"));
  EXPECT_FALSE(on_disk(dir / "backups")) << "refusing is not migrating: no snapshot";
}

TEST(Migrations, NewerDatabaseInRollbackJournalModeIsNotEvenSwitchedToWal) {
  // A newer squirrel's snapshot may be in rollback-journal mode; opening it
  // with this binary must not rewrite its header to WAL before refusing.
  test::TempDir dir;
  auto path = dir / "index.db";
  {
    auto raw = Db::open(path);
    raw.exec(kSchemaV1);
    raw.exec("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY) STRICT");
    raw.execute("INSERT INTO schema_version(version) VALUES (1), (?)",
                {Value{std::int64_t{current_schema_version() + 5}}});
    ASSERT_EQ(std::get<std::string>(raw.query_rows("PRAGMA journal_mode")[0][0]), "delete");
  }
  auto before = read_bytes(path);
  try {
    Store::open(path, options());
    FAIL() << "a newer database must be refused";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("upgrade squirrel"));
  }
  EXPECT_EQ(read_bytes(path), before);
  // migrate() itself refuses the same way for callers holding a Db.
  auto raw = Db::open(path);
  EXPECT_THROW(migrate(raw, migrations(), {}), Error);
  EXPECT_EQ(versions(raw), (std::vector<std::int64_t>{1, current_schema_version() + 5}));
}

TEST(Migrations, ExistingDatabaseIsSnapshottedOnceBeforeItsFirstStep) {
  test::TempDir dir;
  auto path = dir / "index.db";
  make_v1(path);
  auto reg = registry_with(create_table_v2);
  auto snaps = dir / "snaps";
  {
    auto s = Store::open(path, options(&reg, snaps));
    EXPECT_EQ(s.migration().from, 1);
    EXPECT_EQ(s.migration().to, 2);
    EXPECT_EQ(versions(s.db()), (std::vector<std::int64_t>{1, 2}));
    EXPECT_TRUE(has_table(s.db(), "test_v2"));
    EXPECT_EQ(s.db().query_i64("SELECT count(*) FROM volumes WHERE name = 'photos'"), 1) << "the data survives the step";

    auto names = names_in(snaps);
    ASSERT_EQ(names.size(), 1u);
    const auto& name = *names.begin();
    EXPECT_TRUE(std::regex_match(name, std::regex(R"(pre-migration-v1-to-v2-\d{8}T\d{6}\.\d{3}Z\.db)"))) << name;
    EXPECT_EQ(s.migration().snapshot, snaps / name);
  }
  // The snapshot is a valid v1 database with the data as it was.
  auto snap = snaps / *names_in(snaps).begin();
  auto info = inspect_snapshot(snap);
  EXPECT_EQ(info.schema_version, 1);
  EXPECT_TRUE(info.intact) << info.problem;
  {
    auto copy = Db::open(snap, {.create = false, .read_only = true});
    EXPECT_EQ(versions(copy), (std::vector<std::int64_t>{1}));
    EXPECT_FALSE(has_table(copy, "test_v2"));
    EXPECT_EQ(copy.query_i64("SELECT count(*) FROM volumes WHERE name = 'photos'"), 1);
    EXPECT_TRUE(integrity_problems(copy).empty());
  }
  // Opening again at v2 takes no further snapshot.
  auto again = Store::open(path, options(&reg, snaps));
  EXPECT_TRUE(again.migration().snapshot.empty());
  EXPECT_EQ(names_in(snaps).size(), 1u);
}

TEST(Migrations, SnapshotsDefaultToTheBackupsDirBesideTheDatabase) {
  test::TempDir dir;
  auto path = dir / "index.db";
  make_v1(path);
  auto reg = registry_with(create_table_v2);
  auto s = Store::open(path, options(&reg));
  auto names = names_in(dir / "backups");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(names.begin()->starts_with("pre-migration-v1-to-v2-"));
  EXPECT_EQ(s.migration().snapshot, dir / "backups" / *names.begin());
}

TEST(Migrations, AFailingStepRollsBackCompletely) {
  struct Case {
    const char* what;
    std::function<void(Db&)> step;
  };
  const Case cases[] = {
      {"throws after its DDL",
       [](Db& db) {
         create_table_v2(db);
         db.exec("INSERT INTO test_v2(note) VALUES ('half')");
         throw std::runtime_error("step failed on purpose");
       }},
      {"fails in SQL after its DDL",
       [](Db& db) {
         create_table_v2(db);
         db.exec("ALTER TABLE volumes ADD COLUMN label TEXT");
         db.exec("INSERT INTO no_such_table VALUES (1)");
       }},
      {"leaves a dangling reference",
       [](Db& db) {
         create_table_v2(db);
         db.exec("PRAGMA defer_foreign_keys = ON");
         db.exec("INSERT INTO runs_audit(run_id, transition, at_ns) VALUES (424242, 'finish', 1)");
       }},
  };
  for (const auto& c : cases) {
    test::TempDir dir;
    auto path = dir / "index.db";
    make_v1(path);
    auto reg = registry_with(c.step);
    EXPECT_ANY_THROW(Store::open(path, options(&reg))) << c.what;
    auto raw = Db::open(path);
    EXPECT_EQ(versions(raw), (std::vector<std::int64_t>{1})) << c.what;
    EXPECT_FALSE(has_table(raw, "test_v2")) << c.what;
    EXPECT_EQ(raw.query_i64("SELECT count(*) FROM pragma_table_info('volumes') WHERE name = 'label'"), 0) << c.what;
    EXPECT_EQ(raw.query_i64("SELECT count(*) FROM runs_audit"), 0) << c.what;
    EXPECT_TRUE(integrity_problems(raw).empty()) << c.what;
    // The snapshot taken before the attempt is kept: it is the way back.
    EXPECT_EQ(names_in(dir / "backups").size(), 1u) << c.what;
  }
}

TEST(Migrations, AMisorderedRegistryIsRejectedBeforeAnythingRuns) {
  bool ran = false;
  auto spy = [&](Db& db) {
    ran = true;
    create_table_v2(db);
  };
  const Migration& v1 = migrations().at(0);
  const std::vector<std::vector<Migration>> bad = {
      {Migration{2, "two", spy}, v1},
      {v1, Migration{1, "again", spy}},
      {v1, Migration{3, "three", spy}, Migration{2, "two", spy}},
      {Migration{0, "zero", spy}, v1},
      {},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto db = Db::open(":memory:");
    ErrorKind kind = ErrorKind::usage;
    try {
      migrate(db, bad[i], {});
      ADD_FAILURE() << "registry " << i << " was accepted";
    } catch (const Error& e) {
      kind = e.kind();
    }
    EXPECT_EQ(kind, ErrorKind::internal) << i;
    EXPECT_FALSE(ran) << i;
    EXPECT_EQ(schema_version(db), 0) << i;
  }
}

// ---- rotation of routine snapshots ----------------------------------------

TEST(Migrations, RotateBackupsKeepsTheNewestRoutineSnapshotsAndNothingElseIsTouched) {
  test::TempDir dir;
  auto b = dir / "backups";
  fs::create_directories(b);
  const std::int64_t day = 86'400'000'000'000;
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  std::vector<fs::path> routine;
  for (int i = 0; i < 5; ++i) routine.push_back(default_backup_path(b, t0 + i * day));
  // Created newest first, so neither creation order nor mtime can stand in for the name.
  for (auto it = routine.rbegin(); it != routine.rend(); ++it) touch(*it);
  const std::vector<std::string> kept_always = {
      fmt::format("pre-migration-v1-to-v2-{}.db", compact_utc(t0 - day)),  // older than every routine one
      fmt::format("pre-migration-v2-to-v3-{}.db", compact_utc(t0 + 9 * day)),
      "index-1.db",               // a user's file that merely looks similar
      "index-mine.db",
      "index-20200101T000000.000Z.db.txt",
      "myindex-20200101T000000.000Z.db",
      "notes.txt",
  };
  for (const auto& n : kept_always) touch(b / n, "precious " + n);
  fs::create_directory(b / fmt::format("index-{}.db", compact_utc(t0 - 2 * day)));  // a directory, not a snapshot

  EXPECT_TRUE(rotate_backups(b, 0).empty()) << "keep 0 keeps everything";
  EXPECT_TRUE(rotate_backups(b, 5).empty());
  EXPECT_TRUE(rotate_backups(b, 50).empty());

  auto removed = rotate_backups(b, 2);
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<fs::path>{routine[0], routine[1], routine[2]}));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(on_disk(routine[i]), i >= 3) << i;
  for (const auto& n : kept_always) EXPECT_EQ(read_bytes(b / n), "precious " + n) << n;
  EXPECT_TRUE(fs::is_directory(b / fmt::format("index-{}.db", compact_utc(t0 - 2 * day))));

  removed = rotate_backups(b, 1);
  EXPECT_EQ(removed, (std::vector<fs::path>{routine[3]}));
  EXPECT_TRUE(on_disk(routine[4]));
  for (const auto& n : kept_always) EXPECT_TRUE(on_disk(b / n)) << n;

  EXPECT_TRUE(rotate_backups(dir / "no-such-dir", 1).empty());
}

TEST(Migrations, RotationNeverTouchesPreMigrationSnapshotsWrittenByAMigration) {
  test::TempDir dir;
  auto path = dir / "index.db";
  make_v1(path);
  auto reg = registry_with(create_table_v2);
  {
    auto s = Store::open(path, options(&reg));
    for (int i = 0; i < 3; ++i) backup_to(s.db(), default_backup_path(dir / "backups", now_ns() + i * 1'000'000'000));
  }
  std::string pre;
  for (const auto& n : names_in(dir / "backups"))
    if (n.starts_with("pre-migration-v1-to-v2-")) pre = n;
  ASSERT_FALSE(pre.empty());
  EXPECT_EQ(rotate_backups(dir / "backups", 1).size(), 2u);
  auto left = names_in(dir / "backups");
  EXPECT_EQ(left.size(), 2u);
  EXPECT_TRUE(left.count(pre));
}

// Snapshots taken along by sync carry their run id; rotation counts them as
// routine but still never touches near-miss names.
TEST(MigrationsRotation, SyncSnapshotsWithRunIdsRotateAndNearMissesStay) {
  sq::test::TempDir dir;
  auto touch = [&](const std::string& n) { std::ofstream(dir / n) << "x"; };
  touch("index-20260101T000000.000Z-run-3.db");
  touch("index-20260102T000000.000Z-run-17.db");
  touch("index-20260103T000000.000Z.db");
  touch("index-20260101T000000.000Z-run-.db");
  touch("index-20260101T000000.000Z-run-3x.db");
  auto removed = sq::store::rotate_backups(dir.path(), 1);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].filename(), "index-20260101T000000.000Z-run-3.db");
  EXPECT_EQ(removed[1].filename(), "index-20260102T000000.000Z-run-17.db");
  EXPECT_TRUE(std::filesystem::exists(dir / "index-20260101T000000.000Z-run-.db"));
  EXPECT_TRUE(std::filesystem::exists(dir / "index-20260101T000000.000Z-run-3x.db"));
}

namespace {

std::string to_hex_bytes(const Blob& b) {
  std::string out;
  for (auto c : b) out += fmt::format("{:02x}", c);
  return out;
}

std::string cell_text(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) return "NULL";
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* b = std::get_if<Blob>(&v)) return "x" + to_hex_bytes(*b);
  return std::get<std::string>(v);
}

std::vector<std::vector<std::string>> rows_as_text(Db& db, const std::string& table) {
  std::vector<std::vector<std::string>> out;
  for (const auto& row : db.query_rows("SELECT * FROM " + table + " ORDER BY 1, 2, 3")) {
    std::vector<std::string> cells;
    for (const auto& v : row) cells.push_back(cell_text(v));
    out.push_back(std::move(cells));
  }
  return out;
}

// A v2 database holding files in every status and ledger rows in every
// state, built by the real v1 and v2 steps only.
void make_populated_v2(const fs::path& path) {
  static const std::vector<Migration> upto_v2{migrations().at(0), migrations().at(1)};
  auto s = Store::open(path, options(&upto_v2));
  auto& db = s.db();
  auto vol = create_volume(db, "photos", "/srv/photos").id;
  db.execute("INSERT INTO runs(id, kind, volume_id, started_at_ns, ended_at_ns, status) VALUES (1, 'index', ?, 1, 2, "
             "'success')", {Value{vol}});
  db.execute("INSERT INTO runs(id, kind, volume_id, destination, started_at_ns, ended_at_ns, status) VALUES "
             "(2, 'sync', ?, 'usb', 3, 4, 'success')", {Value{vol}});
  db.execute("INSERT INTO folders(id, volume_id, parent_id, path) VALUES (1, ?, NULL, X'')", {Value{vol}});
  const char* statuses[] = {"present", "missing", "superseded", "offloaded"};
  const char* states[] = {"live", "lost", "displaced", "committing"};
  for (int i = 0; i < 4; ++i) {
    db.execute("INSERT INTO contents(id, blake3, size_bytes) VALUES (?, ?, ?)",
               {Value{std::int64_t{i + 1}}, Value{Blob(32, static_cast<std::uint8_t>(i))}, Value{std::int64_t{i * 10}}});
    db.execute("INSERT INTO files VALUES (1, ?, ?, 5, 6, ?, 1, 1, 1, 7)",
               {Value{Blob{static_cast<std::uint8_t>('a' + i)}}, Value{std::int64_t{i + 1}}, Value{std::string(statuses[i])}});
    bool displaced = std::string(states[i]) == "displaced";
    db.execute("INSERT INTO remote_paths(destination, folder_id, name, content_id, written_run_id, state, "
               "displaced_run_id, size_bytes, mtime_ns) VALUES ('usb', 1, ?, ?, 2, ?, ?, 0, 0)",
               {Value{Blob{static_cast<std::uint8_t>('a' + i)}}, Value{std::int64_t{i + 1}}, Value{std::string(states[i])},
                displaced ? Value{std::int64_t{2}} : Value{}});
  }
}

}  // namespace

TEST(Migrations, V3RebuildKeepsEveryFileAndLedgerRowAndEveryGuard) {
  test::TempDir dir;
  make_populated_v2(dir / "index.db");
  std::vector<std::vector<std::string>> files_before, ledger_before;
  {
    auto raw = Db::open(dir / "index.db");
    files_before = rows_as_text(raw, "files");
    ledger_before = rows_as_text(raw, "remote_paths");
  }
  ASSERT_EQ(files_before.size(), 4u);
  auto s = Store::open(dir / "index.db", options(nullptr, dir / "snaps"));
  auto& db = s.db();
  EXPECT_EQ(s.migration().from, 2);
  EXPECT_EQ(rows_as_text(db, "files"), files_before);
  EXPECT_EQ(rows_as_text(db, "remote_paths"), ledger_before);
  EXPECT_TRUE(db.query_rows("PRAGMA foreign_key_check").empty());
  EXPECT_EQ(db.query_i64("PRAGMA foreign_keys"), 1) << "enforcement is back on after the rebuild";
  EXPECT_EQ(fresh_schema(), dump_schema(db));
  EXPECT_THROW(db.exec("DELETE FROM files"), Error) << "the no-delete trigger survived the rebuild";
  EXPECT_THROW(db.exec("UPDATE files SET status = 'gone'"), Error);
  EXPECT_THROW(db.exec("UPDATE remote_paths SET state = 'gone'"), Error);
  EXPECT_THROW(db.exec("INSERT INTO remote_paths(destination, folder_id, name, content_id, written_run_id, state, "
                       "size_bytes, mtime_ns) VALUES ('usb', 1, X'a1', 1, 2, 'live', 0, 0)"),
               Error)
      << "a ledger row must point at a file row";
}

// Two processes opening the same brand-new database at once: each step runs
// once (the version is re-read under the write lock), and both succeed.
TEST(Migrations, ProcessesRacingToCreateOneDatabaseAllSucceed) {
  for (int round = 0; round < 10; ++round) {
    test::TempDir dir;
    auto path = dir / "index.db";
    std::vector<pid_t> kids;
    for (int k = 0; k < 3; ++k) {
      pid_t pid = ::fork();
      if (pid == 0) {
        int code = 0;
        try {
          auto s = Store::open(path, options());
          code = schema_version(s.db()) == current_schema_version() ? 0 : 2;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "child: %s\n", e.what());
          code = 1;
        }
        ::_exit(code);
      }
      kids.push_back(pid);
    }
    for (auto pid : kids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
    }
    auto s = Store::open(path, options());
    std::vector<std::int64_t> expected;
    for (const auto& m : migrations()) expected.push_back(m.version);
    EXPECT_EQ(versions(s.db()), expected);
  }
}
