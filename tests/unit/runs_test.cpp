// Seed properties 1 (symmetric run gates, one atomic begin) and 2
// (first-write-wins finish for every run-like table).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.hpp"
#include "store/hook_runs.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::store;

namespace {

RunSubject subject(RunKind k, std::int64_t vol, const std::string& dest = "nas") {
  return {k, vol, kind_has_destination(k) ? dest : ""};
}

RunOutcome done(RunStatus s) { return {s, "", 0, std::nullopt}; }

StoreOptions test_options() {
  StoreOptions o;
  o.node_name = "testnode";
  return o;
}

std::vector<Value> raw_row(Db& db, const std::string& table, std::int64_t id) {
  auto rows = db.query_rows("SELECT * FROM " + table + " WHERE id = ?", {Value{id}});
  return rows.empty() ? std::vector<Value>{} : rows[0];
}

class RunsTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  Store store = test::open_store(dir);
  Db& db = store.db();
  std::int64_t vol = create_volume(db, "photos", "/p").id;
  std::int64_t other = create_volume(db, "docs", "/d").id;
};

}  // namespace

TEST(RunGate, ConflictIsSymmetricForEveryPairOfKinds) {
  for (auto a : kAllRunKinds)
    for (auto b : kAllRunKinds)
      for (const char* da : {"nas", "cloud"})
        for (const char* db : {"nas", "cloud"}) {
          RunSubject sa = subject(a, 1, da), sb = subject(b, 1, db);
          EXPECT_EQ(runs_conflict(sa, sb), runs_conflict(sb, sa))
              << to_string(a) << "/" << da << " vs " << to_string(b) << "/" << db;
        }
}

TEST(RunGate, OffloadConflictsWithEveryKindOnItsVolumeBothWays) {
  for (auto k : kAllRunKinds) {
    EXPECT_TRUE(runs_conflict(subject(RunKind::offload, 1), subject(k, 1))) << to_string(k);
    EXPECT_TRUE(runs_conflict(subject(k, 1), subject(RunKind::offload, 1))) << to_string(k);
  }
}

TEST(RunGate, DifferentVolumesAndVolumelessRunsNeverConflict) {
  for (auto a : kAllRunKinds)
    for (auto b : kAllRunKinds) {
      EXPECT_FALSE(runs_conflict(subject(a, 1), subject(b, 2)));
      RunSubject none{a, std::nullopt, kind_has_destination(a) ? "nas" : ""};
      EXPECT_FALSE(runs_conflict(none, subject(b, 1)));
    }
}

TEST(RunGate, SyncsToDifferentDestinationsMayOverlapButNotToTheSame) {
  EXPECT_TRUE(runs_conflict(subject(RunKind::sync, 1, "nas"), subject(RunKind::sync, 1, "nas")));
  EXPECT_FALSE(runs_conflict(subject(RunKind::sync, 1, "nas"), subject(RunKind::sync, 1, "cloud")));
  EXPECT_TRUE(runs_conflict(subject(RunKind::index, 1), subject(RunKind::sync, 1)));
  EXPECT_TRUE(runs_conflict(subject(RunKind::index, 1), subject(RunKind::audit, 1)));
}

TEST_F(RunsTest, BeginMatchesTheDeclaredRelationForEveryOrderedPair) {
  for (auto a : kAllRunKinds)
    for (auto b : kAllRunKinds) {
      auto first = begin_run(db, subject(a, vol));
      ASSERT_TRUE(first.began());
      auto second = begin_run(db, subject(b, vol));
      bool expect_block = runs_conflict(subject(a, vol), subject(b, vol));
      EXPECT_EQ(!second.began(), expect_block) << to_string(a) << " then " << to_string(b);
      if (expect_block) {
        ASSERT_TRUE(second.blocker);
        EXPECT_EQ(second.blocker->id, first.run_id);
        auto refused = get_run(db, second.refused_run_id);
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->status, RunStatus::refused);
        EXPECT_NE(refused->error.find("already running (run=" + std::to_string(first.run_id)), std::string::npos);
      }
      auto other_vol = begin_run(db, subject(b, other));
      EXPECT_TRUE(other_vol.began()) << "other volume must never be blocked";
      for (auto id : {first.run_id, second.run_id, other_vol.run_id})
        if (id) finish_run(db, id, done(RunStatus::success));
    }
}

TEST_F(RunsTest, FinishIsFirstWriteWinsAndLeavesTheRowByteIdentical) {
  auto r = begin_run(db, subject(RunKind::index, vol));
  finish_run(db, r.run_id, {RunStatus::partial, "2 files unreadable", 7, 5});
  auto before = raw_row(db, "runs", r.run_id);
  auto audits_before = audit_rows(db, r.run_id).size();
  for (auto s : {RunStatus::success, RunStatus::failed, RunStatus::aborted, RunStatus::partial}) {
    try {
      finish_run(db, r.run_id, {s, "second", 99, std::nullopt});
      FAIL() << "second finish must be refused";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::already_finished);
    }
  }
  EXPECT_EQ(raw_row(db, "runs", r.run_id), before);
  EXPECT_EQ(audit_rows(db, r.run_id).size(), audits_before);
}

TEST_F(RunsTest, FinishRefusesNonTerminalTargetAndUnknownId) {
  auto r = begin_run(db, subject(RunKind::audit, vol));
  try {
    finish_run(db, r.run_id, done(RunStatus::running));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
  EXPECT_EQ(get_run(db, r.run_id)->status, RunStatus::running);
  try {
    finish_run(db, 987654, done(RunStatus::success));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
}

TEST_F(RunsTest, EveryFinishWritesExactlyOneAuditRowAtTheEndTime) {
  auto r = begin_run(db, subject(RunKind::sync, vol));
  finish_run(db, r.run_id, {RunStatus::success, "", 3, 0});
  auto rows = audit_rows(db, r.run_id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].transition, "finish");
  EXPECT_EQ(rows[0].note, "success");
  EXPECT_EQ(rows[0].at_ns, *get_run(db, r.run_id)->ended_at_ns);
}

TEST_F(RunsTest, HookRunFinishSharesFirstWriteWins) {
  auto run = begin_run(db, subject(RunKind::index, vol));
  auto h = begin_hook_run(db, {vol, "change", run.run_id, true});
  finish_hook_run(db, h, "failed", 3, "exit 3");
  auto before = raw_row(db, "hook_runs", h);
  EXPECT_THROW(finish_hook_run(db, h, "success", 0, ""), Error);
  EXPECT_EQ(raw_row(db, "hook_runs", h), before);
  EXPECT_THROW(finish_hook_run(db, 4242, "success", 0, ""), Error);
  auto h2 = begin_hook_run(db, {vol, "interval", std::nullopt, false});
  EXPECT_THROW(finish_hook_run(db, h2, "running", std::nullopt, ""), Error);
  EXPECT_THROW(finish_hook_run(db, h2, "partial", std::nullopt, ""), Error);
  EXPECT_THROW(begin_hook_run(db, {vol, "change", std::nullopt, false}), Error);
  EXPECT_THROW(begin_hook_run(db, {vol, "interval", run.run_id, false}), Error);
  EXPECT_THROW(begin_hook_run(db, {vol, "sometimes", std::nullopt, false}), Error);
}

TEST_F(RunsTest, ManualFailKeepsFileCountAndNamesTheOperator) {
  auto r = begin_run(db, subject(RunKind::index, vol));
  db.execute("UPDATE runs SET file_count = 41 WHERE id = ?", {Value{r.run_id}});
  fail_run_manually(db, r.run_id, "alice");
  auto row = get_run(db, r.run_id);
  EXPECT_EQ(row->status, RunStatus::failed);
  EXPECT_EQ(row->file_count, 41);
  auto audits = audit_rows(db, r.run_id);
  ASSERT_EQ(audits.size(), 2u);
  EXPECT_EQ(audits[1].transition, "manual-fail");
  EXPECT_EQ(audits[1].op.value_or(""), "alice");
  EXPECT_THROW(fail_run_manually(db, r.run_id, "alice"), Error);
}

TEST_F(RunsTest, ReapingAbortsRunsOfDeadOwnersButNeverOfLiveOnes) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  BeginOptions dead;
  dead.owner.pid = child;  // exited and reaped: positively gone
  auto gone = begin_run(db, subject(RunKind::index, vol), dead);
  auto hook = begin_hook_run(db, {vol, "interval", std::nullopt, false, dead.owner});
  BeginOptions reused = {};
  reused.owner.start_ticks += 1;  // our own pid, but another process start: the pid was reused
  auto stale = begin_run(db, subject(RunKind::sync, other), reused);
  auto live = begin_run(db, subject(RunKind::index, other));  // blocked by stale sync until reaped
  EXPECT_TRUE(live.began()) << "the stale sync must have been reaped first";
  auto reaped = reap_dead_owners(db);
  EXPECT_EQ(get_run(db, gone.run_id)->status, RunStatus::aborted);
  EXPECT_EQ(get_run(db, stale.run_id)->status, RunStatus::aborted);
  EXPECT_EQ(get_run(db, live.run_id)->status, RunStatus::running);
  EXPECT_EQ(std::get<std::string>(db.query_rows("SELECT status FROM hook_runs WHERE id=?", {Value{hook}})[0][0]),
            "aborted");
  auto audits = audit_rows(db, gone.run_id);
  ASSERT_EQ(audits.size(), 1u);
  EXPECT_EQ(audits[0].transition, "abort");
}

// Racers are forked while the parent holds no connection: SQLite's
// per-process lock bookkeeping must not be inherited across fork(). Every
// racer stays alive until all have tried, so a winner cannot be reaped as
// dead and let a late racer in.
int race_round(const std::filesystem::path& path, std::int64_t vol, int racers) {
  int go[2], results[2], release[2];
  if (pipe(go) != 0 || pipe(results) != 0 || pipe(release) != 0) return -1;
  std::vector<pid_t> kids;
  for (int i = 0; i < racers; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      close(go[1]);
      close(results[0]);
      close(release[1]);
      char c;
      if (read(go[0], &c, 1) != 0) _exit(3);
      char outcome = '2';
      try {
        auto s = Store::open(path, test_options());
        auto kind = i % 2 ? RunKind::offload : RunKind::index;
        outcome = begin_run(s.db(), subject(kind, vol)).began() ? '0' : '1';
      } catch (const std::exception& e) {
        fprintf(stderr, "racer: %s\n", e.what());
      }
      if (write(results[1], &outcome, 1) != 1) _exit(3);
      if (read(release[0], &c, 1) != 0) _exit(3);
      _exit(outcome - '0');
    }
    kids.push_back(pid);
  }
  close(go[0]);
  close(results[1]);
  close(release[0]);
  close(go[1]);  // EOF releases every racer at once
  int winners = 0, failures = 0;
  for (int i = 0; i < racers; ++i) {
    char c = '2';
    if (read(results[0], &c, 1) != 1) ++failures;
    winners += c == '0';
    failures += c == '2';
  }
  close(results[0]);
  close(release[1]);  // now the racers may exit
  for (auto pid : kids) waitpid(pid, nullptr, 0);
  return failures ? -1 : winners;
}

TEST(RunGateRace, ProcessesRacingForOneGateNeverBothWin) {
  test::TempDir dir;
  auto path = dir / "index.db";
  std::int64_t vol = 0;
  {
    auto s = Store::open(path, test_options());
    vol = create_volume(s.db(), "photos", "/p").id;
  }
  for (int round = 0; round < 40; ++round) EXPECT_EQ(race_round(path, vol, 4), 1) << "round " << round;
  auto s = Store::open(path, test_options());
  reap_dead_owners(s.db());
  EXPECT_EQ(*s.db().query_i64("SELECT count(*) FROM runs WHERE status = 'running'"), 0);
  EXPECT_EQ(*s.db().query_i64("SELECT count(*) FROM runs WHERE status = 'aborted'"), 40);
  EXPECT_EQ(*s.db().query_i64("SELECT count(*) FROM runs WHERE status = 'refused'"), 120);
}
