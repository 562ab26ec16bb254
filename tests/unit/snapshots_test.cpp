// Whole-database snapshots: backups that never overwrite, inspection that
// writes nothing, integrity checks that see real corruption, and a restore
// that keeps the displaced database (with its WAL) instead of losing it.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/process.hpp"
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

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool on_disk(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

fs::path sibling(const fs::path& p, const std::string& suffix) { return p.string() + suffix; }

std::vector<std::string> volume_names(Db& db) {
  std::vector<std::string> out;
  for (const auto& v : list_volumes(db)) out.push_back(v.name);
  return out;
}

// Enough content rows to fill many pages.
void add_contents(Db& db, int n) {
  Tx tx(db);
  for (int i = 0; i < n; ++i) {
    auto d = blake3(std::to_string(i));
    db.execute("INSERT INTO contents(blake3, size_bytes) VALUES (?, ?)",
               {Value{Blob(d.begin(), d.end())}, Value{std::int64_t{i}}});
  }
  tx.commit();
}

}  // namespace

TEST(Snapshots, BackupRefusesAnExistingFileAndLeavesItAlone) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  auto target = dir / "snap.db";
  write_bytes(target, "precious");
  ErrorKind kind = ErrorKind::internal;
  try {
    backup_to(s.db(), target);
    ADD_FAILURE() << "an existing file must not be overwritten";
  } catch (const Error& e) {
    kind = e.kind();
    EXPECT_THAT(e.what(), HasSubstr("already exists"));
  }
  EXPECT_EQ(kind, ErrorKind::refused);
  EXPECT_EQ(read_bytes(target), "precious");
}

TEST(Snapshots, BackupIsAnIntactCopyOfTheData) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  create_volume(s.db(), "photos", "/p");
  add_contents(s.db(), 50);
  auto target = dir / "deeper" / "still" / "snap.db";  // missing parents are created
  backup_to(s.db(), target);
  create_volume(s.db(), "after", "/a");  // not in the snapshot

  auto copy = Db::open(target, {.create = false, .read_only = true});
  EXPECT_TRUE(integrity_problems(copy).empty());
  EXPECT_EQ(schema_version(copy), current_schema_version());
  EXPECT_EQ(volume_names(copy), std::vector<std::string>{"photos"});
  EXPECT_EQ(copy.query_i64("SELECT count(*) FROM contents"), 50);
  EXPECT_EQ(dump_schema(copy), dump_schema(s.db()));

  auto info = inspect_snapshot(target);
  EXPECT_EQ(info.schema_version, current_schema_version());
  EXPECT_TRUE(info.intact);
  EXPECT_EQ(info.problem, "");
  EXPECT_TRUE(integrity_problems(s.db()).empty());
}

// A backup is written under a hidden temporary name and renamed when
// whole: nothing but the snapshot itself is left, and a partial one (here
// left by a process that is gone) is never counted by rotation and is
// removed, with its journal, by the next backup into that directory.
TEST(Snapshots, BackupLeavesOnlyTheWholeSnapshotAndRemovesDeadPartials) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  add_contents(s.db(), 50);
  auto backups = dir / "backups";
  fs::create_directories(backups);
  auto me = self_identity();
  auto dead = backups / fmt::format(".index-20240101T000000.000Z.db.partial-{}-{}", me.pid, me.start_ticks + 1);
  auto mine = backups / fmt::format(".index-20240101T000001.000Z.db.partial-{}-{}", me.pid, me.start_ticks);
  for (const auto& p : {dead, sibling(dead, "-journal"), mine}) write_bytes(p, "half");

  auto to = backups / "index-20250101T000000.000Z.db";
  backup_to(s.db(), to);
  EXPECT_TRUE(inspect_snapshot(to).intact);
  EXPECT_FALSE(on_disk(dead));
  EXPECT_FALSE(on_disk(sibling(dead, "-journal")));
  EXPECT_EQ(read_bytes(mine), "half") << "a partial of a process still running is left alone";
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(backups)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{mine.filename().string(), to.filename().string()}));

  backup_to(s.db(), backups / "index-20250101T000001.000Z.db");
  EXPECT_EQ(rotate_backups(backups, 1), std::vector<fs::path>{to}) << "only whole snapshots are counted";
  EXPECT_TRUE(on_disk(mine));
}

// A process killed while it writes a snapshot (held mid-VACUUM by SQLite's
// progress handler, so the kill lands there for sure) leaves nothing under
// the snapshot's name — only its partial, which is not counted as a
// snapshot and which the next backup removes together with its journal.
TEST(Snapshots, ABackupKilledMidWriteLeavesNoSnapshotAndTheNextBackupClearsIt) {
  test::TempDir dir;
  {
    auto s = test::open_store(dir);
    add_contents(s.db(), 20000);
  }
  auto backups = dir / "backups";
  fs::create_directories(backups);
  auto to = backups / "index-20250101T000000.000Z.db";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  // The parent holds no connection across fork().
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      auto s = test::open_store(dir);
      static int fd = ready[1], calls = 0;
      sqlite3_progress_handler(
          s.db().handle(), 100,
          [](void*) -> int {
            if (++calls == 200) {
              char c = 'x';
              if (write(fd, &c, 1) != 1) _exit(3);
              for (;;) pause();  // mid-write, until killed
            }
            return 0;
          },
          nullptr);
      backup_to(s.db(), to);
      _exit(0);  // finished before it could be held: the parent reports it
    } catch (...) {
      _exit(1);
    }
  }
  close(ready[1]);
  char c = 0;
  bool held = read(ready[0], &c, 1) == 1;
  close(ready[0]);
  if (held) kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(held) << "the backup was never held mid-write (child status " << status << ")";

  EXPECT_FALSE(on_disk(to)) << "an incomplete snapshot under the snapshot's own name";
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(backups)) left.push_back(e.path().filename().string());
  ASSERT_FALSE(left.empty());
  for (const auto& n : left) EXPECT_THAT(n, ::testing::StartsWith(".index-20250101T000000.000Z.db.partial-" +
                                                                   std::to_string(child) + "-"));
  EXPECT_TRUE(rotate_backups(backups, 1).empty());

  auto s = test::open_store(dir);
  auto next = backups / "index-20250101T000001.000Z.db";
  backup_to(s.db(), next);
  left.clear();
  for (const auto& e : fs::directory_iterator(backups)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{next.filename().string()});
  EXPECT_TRUE(inspect_snapshot(next).intact);
}

TEST(Snapshots, DefaultBackupPathIsSortableByTime) {
  auto a = default_backup_path("/b", 1'700'000'000'123'000'000);
  auto b = default_backup_path("/b", 1'700'000'001'000'000'000);
  EXPECT_EQ(a, fs::path("/b/index-20231114T221320.123Z.db"));
  EXPECT_LT(a.filename().string(), b.filename().string());
}

TEST(Snapshots, InspectReportsGarbageWithoutWritingBesideIt) {
  test::TempDir dir;
  auto garbage = dir / "garbage.db";
  std::string junk(8192, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
  write_bytes(garbage, junk);
  auto info = inspect_snapshot(garbage);
  EXPECT_EQ(info.schema_version, 0);
  EXPECT_FALSE(info.intact);
  EXPECT_NE(info.problem, "");
  EXPECT_EQ(read_bytes(garbage), junk);
  EXPECT_FALSE(on_disk(sibling(garbage, "-wal")));
  EXPECT_FALSE(on_disk(sibling(garbage, "-shm")));
  EXPECT_FALSE(on_disk(sibling(garbage, "-journal")));

  // An SQLite database of some other program is not a squirrel snapshot.
  auto other = dir / "other.db";
  {
    auto raw = Db::open(other);
    raw.exec("CREATE TABLE t(x)");
  }
  info = inspect_snapshot(other);
  EXPECT_FALSE(info.intact);
  EXPECT_THAT(info.problem, HasSubstr("not a squirrel database"));

  info = inspect_snapshot(dir / "missing.db");
  EXPECT_FALSE(info.intact);
  EXPECT_NE(info.problem, "");
  EXPECT_FALSE(on_disk(dir / "missing.db"));
}

TEST(Snapshots, IntegrityProblemsSeesACorruptedCopy) {
  test::TempDir dir;
  auto s = test::open_store(dir);
  add_contents(s.db(), 12000);  // enough for a tree of more than 10 leaves of 16 KiB
  auto copy = dir / "copy.db";
  backup_to(s.db(), copy);

  std::int64_t page_size = 0, page = 0;
  {
    auto clean = Db::open(copy, {.create = false, .read_only = true});
    ASSERT_TRUE(integrity_problems(clean).empty()) << "the copy starts clean";
    page_size = *clean.query_i64("PRAGMA page_size");
    // A leaf page of the contents table, in the middle of the tree.
    auto leaves = clean.query_rows("SELECT pageno FROM dbstat WHERE name = 'contents' AND pagetype = 'leaf' "
                                   "ORDER BY pageno");
    ASSERT_GT(leaves.size(), 10u);
    page = std::get<std::int64_t>(leaves[leaves.size() / 2][0]);
  }
  auto bytes = read_bytes(copy);
  auto middle = static_cast<std::size_t>((page - 1) * page_size + page_size / 2);
  ASSERT_LT(middle + 64, bytes.size());
  for (std::size_t i = 0; i < 64; ++i) bytes[middle + i] = static_cast<char>(0xA5 ^ i);
  write_bytes(copy, bytes);

  auto corrupt = Db::open(copy, {.create = false, .read_only = true});
  std::vector<std::string> problems;
  ASSERT_NO_THROW(problems = integrity_problems(corrupt)) << "a corrupt database is reported, not thrown on";
  EXPECT_FALSE(problems.empty());
  auto info = inspect_snapshot(copy);
  EXPECT_FALSE(info.intact);
  EXPECT_NE(info.problem, "");
}

TEST(Snapshots, RestoreKeepsTheDisplacedDatabaseWithItsWalAndShm) {
  test::TempDir dir;
  auto live = dir / "index.db";
  auto snap = dir / "backups" / "snap.db";
  {
    auto s = test::open_store(dir);
    create_volume(s.db(), "photos", "/p");
    backup_to(s.db(), snap);
    create_volume(s.db(), "later", "/l");
  }
  // A process that dies mid-flight leaves its last commit only in the WAL.
  // The parent holds no connection across fork().
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      auto s = test::open_store(dir);
      s.db().exec("PRAGMA wal_autocheckpoint=0");
      create_volume(s.db(), "only-in-wal", "/w");
      _exit(0);  // no close, no checkpoint
    } catch (...) {
      _exit(1);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(on_disk(sibling(live, "-wal")));
  ASSERT_TRUE(on_disk(sibling(live, "-shm")));
  auto old_db = read_bytes(live), old_wal = read_bytes(sibling(live, "-wal")),
       old_shm = read_bytes(sibling(live, "-shm"));
  auto snap_bytes = read_bytes(snap);

  auto r = restore_snapshot(snap, live);
  EXPECT_TRUE(std::regex_match(r.displaced.filename().string(), std::regex(R"(index\.db\.pre-restore-\d+)")))
      << r.displaced;
  EXPECT_EQ(r.displaced.parent_path(), live.parent_path());
  EXPECT_EQ(read_bytes(r.displaced), old_db);
  EXPECT_EQ(read_bytes(sibling(r.displaced, "-wal")), old_wal);
  EXPECT_EQ(read_bytes(sibling(r.displaced, "-shm")), old_shm);
  EXPECT_FALSE(on_disk(sibling(live, "-wal"))) << "a stale WAL must not be replayed into the restored database";
  EXPECT_FALSE(on_disk(sibling(live, "-shm")));
  EXPECT_EQ(read_bytes(live), snap_bytes);
  EXPECT_EQ(read_bytes(snap), snap_bytes) << "the snapshot itself is untouched";
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".restore-"), std::string::npos) << "staging left behind: " << e.path();

  {
    auto s = test::open_store(dir);
    EXPECT_EQ(volume_names(s.db()), std::vector<std::string>{"photos"});
    EXPECT_TRUE(integrity_problems(s.db()).empty());
  }
  // The displaced database, opened with its own WAL, still holds everything.
  auto displaced = Db::open(r.displaced, {.create = false, .read_only = false});
  EXPECT_EQ(volume_names(displaced), (std::vector<std::string>{"later", "only-in-wal", "photos"}));
}

TEST(Snapshots, RestoreWithoutAWalMovesOnlyTheDatabase) {
  test::TempDir dir;
  auto live = dir / "index.db";
  auto snap = dir / "snap.db";
  {
    auto s = test::open_store(dir);
    create_volume(s.db(), "photos", "/p");
    backup_to(s.db(), snap);
    create_volume(s.db(), "later", "/l");
  }
  auto old = read_bytes(live);
  auto r = restore_snapshot(snap, live);
  EXPECT_EQ(read_bytes(r.displaced), old);
  EXPECT_FALSE(on_disk(sibling(r.displaced, "-wal")));
  auto s = test::open_store(dir);
  EXPECT_EQ(volume_names(s.db()), std::vector<std::string>{"photos"});
}

TEST(Snapshots, RestoreFromAMissingSnapshotChangesNothing) {
  test::TempDir dir;
  auto live = dir / "index.db";
  { test::open_store(dir); }
  auto before = read_bytes(live);
  EXPECT_THROW(restore_snapshot(dir / "nope.db", live), Error);
  EXPECT_EQ(read_bytes(live), before);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"index.db"});
}
