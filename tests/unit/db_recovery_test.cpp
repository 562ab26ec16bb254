// Getting out of trouble with the index database, through the real binary:
// a truncated index.db is named corrupt by every command, `db check` still
// works on it and prints the way out, and `db restore` says when it needs
// --force; a sync killed mid-snapshot leaves litter the next run removes;
// a sync leaves no empty staging directory; a run-wide warning (the index
// snapshot) is printed without an empty path and never claims a success
// the sync did not have.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/process.hpp"
#include "loop_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::LoopSandbox;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class DbRecovery : public ::testing::Test {
 protected:
  LoopSandbox sb;
  fs::path backups() const { return sb.db_path().parent_path() / "backups"; }

  void seed_and_sync() {
    for (int i = 0; i < 200; ++i) sb.put("f" + std::to_string(i), std::string(100 + i, 'x') + std::to_string(i));
    sb.ok({"index", "photos"});
    sb.ok({"sync", "--init"});
  }
};

}  // namespace

// Every command names the damage and points at `db check`; `db check`
// lists the damage and the snapshot to restore; `db restore` of it asks
// for --force, saying so with the whole command; with it, all is well.
TEST_F(DbRecovery, ATruncatedDatabaseShowsTheWayOutAtEveryStep) {
  seed_and_sync();
  sb.ok({"db", "backup"});
  auto snaps = names_in(backups());
  ASSERT_FALSE(snaps.empty());
  fs::resize_file(sb.db_path(), fs::file_size(sb.db_path()) / 3);

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status"}, {"index", "photos"}, {"sync"}, {"runs"}, {"verify", "usb"}, {"offload", "photos", "."}}) {
    auto r = sb.expect(1, args);
    ASSERT_EQ(r.error_lines().size(), 1u) << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_THAT(r.error_lines()[0], HasSubstr("is corrupt")) << ::testing::PrintToString(args);
    EXPECT_THAT(r.error_lines()[0], HasSubstr("squirrel db check")) << ::testing::PrintToString(args);
  }

  auto check = sb.expect(1, {"db", "check"});
  EXPECT_TRUE(check.error_lines().empty()) << check.err;
  EXPECT_THAT(check.out, HasSubstr("malformed"));
  auto newest = (backups() / snaps.back()).string();
  EXPECT_THAT(check.out, HasSubstr("restore it with `squirrel db restore " + newest + "`")) << check.out;

  auto refused = sb.expect(1, {"db", "restore", newest});
  ASSERT_EQ(refused.error_lines().size(), 1u) << refused.err;
  EXPECT_THAT(refused.error_lines()[0], HasSubstr("`squirrel db restore " + newest + " --force`"));

  auto restored = sb.ok({"db", "restore", newest, "--force"});
  EXPECT_THAT(restored.out, StartsWith("restored "));
  EXPECT_EQ(sb.ok({"db", "check"}).out, "ok\n");
  sb.ok({"index", "photos"});
  sb.ok({"sync"});
}

// What a sync killed while writing its snapshot leaves — a partial snapshot
// (under its temporary name, of a process that is gone) with SQLite's
// journal, and the half-written snapshot and journal older versions wrote
// under the final name — is removed by the next sync, which adds one whole
// snapshot; a partial of a process still running and other files stay.
TEST_F(DbRecovery, TheNextSyncRemovesWhatAKilledSnapshotLeft) {
  seed_and_sync();
  auto me = sq::self_identity();
  std::string dead = std::to_string(me.pid) + "-" + std::to_string(me.start_ticks + 1);  // not this process
  std::string alive = std::to_string(me.pid) + "-" + std::to_string(me.start_ticks);
  const std::vector<std::string> litter = {
      ".index-20240101T000000.000Z-run-3.db.partial-" + dead,
      ".index-20240101T000000.000Z-run-3.db.partial-" + dead + "-journal",
      "index-20240102T000000.000Z-run-4.db",
      "index-20240102T000000.000Z-run-4.db-journal",
  };
  const std::vector<std::string> kept = {
      ".index-20240103T000000.000Z-run-5.db.partial-" + alive,
      "index-old.db",
      "index-old.db-journal",
  };
  for (const auto& n : litter) sq::test::write_file(backups() / n, "half");
  for (const auto& n : kept) sq::test::write_file(backups() / n, "keep");
  auto before = names_in(backups());

  sb.put("one-more", "1");
  sb.ok({"index", "photos"});
  sb.ok({"sync"});
  auto after = names_in(backups());
  for (const auto& n : litter) EXPECT_FALSE(fs::exists(backups() / n)) << n;
  for (const auto& n : kept) EXPECT_EQ(sq::test::read_file(backups() / n), "keep") << n;
  std::vector<std::string> added;
  for (const auto& n : after)
    if (std::find(before.begin(), before.end(), n) == before.end()) added.push_back(n);
  ASSERT_EQ(added.size(), 1u) << ::testing::PrintToString(after);
  EXPECT_THAT(added[0], StartsWith("index-"));
  EXPECT_EQ(sb.ok({"db", "restore", (backups() / added[0]).string()}).status, 0);
}

// A successful sync removes its own staging directory once it has finished;
// no run-<id> directory piles up at the destination.
TEST_F(DbRecovery, ASyncLeavesNoStagingDirectoryBehind) {
  seed_and_sync();
  sb.put("another", "2");
  sb.ok({"index", "photos"});
  sb.ok({"sync"});
  EXPECT_EQ(names_in(sb.vdest() / ".squirrel-staging"), std::vector<std::string>{});
}

// The index snapshot cannot be written (its directory would be under a
// file): the warning names no path and says the sync's own result stands,
// for a successful and for a partial sync alike.
TEST_F(DbRecovery, ASnapshotWarningNamesNoPathAndClaimsNoSuccess) {
  sq::test::write_file(sb.root() / "not-a-dir", "x");
  sb.configure("");
  auto text = sq::test::read_file(sb.config_path());
  sb.write_config_raw(text + "\n[backups]\ndir = \"" + (sb.root() / "not-a-dir" / "backups").string() + "\"\n");
  sb.put("a.txt", "alpha");
  sb.ok({"index", "photos"});
  auto ok = sb.ok({"sync", "--init"});
  auto partial_run = [&] {
    sb.put("b.txt", "bravo");
    sb.ok({"index", "photos"});
    sb.put("b.txt", "BRAVO");  // changed after the index: the sync ends partial
    return sb.expect(1, {"sync"});
  }();
  for (const auto* r : {&ok, &partial_run}) {
    std::vector<std::string> snapshot_lines;
    for (const auto& l : r->err_lines())
      if (l.find("index snapshot") != std::string::npos) snapshot_lines.push_back(l);
    ASSERT_EQ(snapshot_lines.size(), 1u) << r->err;
    EXPECT_THAT(snapshot_lines[0], StartsWith("warning: index snapshot not taken along: "));
    EXPECT_THAT(snapshot_lines[0], HasSubstr("(the sync's own result stands)"));
    EXPECT_THAT(r->err, ::testing::Not(HasSubstr("succeeded")));
    EXPECT_THAT(r->err, ::testing::Not(HasSubstr(": : ")));
  }
  EXPECT_THAT(partial_run.out, HasSubstr(" partial "));
}
