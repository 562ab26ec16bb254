// Several processes run index and audit of one volume at once, round after
// round, with the tree changing between rounds. Every attempt either runs
// or is refused by the gate; afterwards the database satisfies every
// invariant and its live set is the disk.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "engine/volume.hpp"
#include "index_util.hpp"
#include "store/runs.hpp"

using namespace sq;
using namespace sq::store;
namespace fs = std::filesystem;

namespace {

constexpr int kRacers = 4, kAttempts = 5, kRounds = 4, kFiles = 160;

StoreOptions store_options() {
  StoreOptions o;
  o.node_name = "testnode";
  return o;
}

std::string file_name(int i) { return fmt::format("d{}/f{:03}", i % 4, i); }

// Every racer's first attempt is a full index, so the first run to begin in
// a round is an index that sees the whole change made before the round.
engine::IndexOptions plan(int racer, int round, int attempt) {
  auto o = test::index_opts();
  if (attempt == 0 || round == 0) return o;  // round 0: nothing indexed yet, nothing to audit
  switch ((racer + round + attempt) % 4) {
    case 1: o.shallow = true; break;
    case 2: o.mode = engine::IndexMode::audit; break;
    case 3: o.mode = engine::IndexMode::audit_deep; break;
    default: break;
  }
  return o;
}

char attempt(const config::Config& cfg, Store& st, const engine::IndexOptions& o) {
  try {
    engine::run_index(cfg, st, "v", o);
    return 's';
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::conflict) return 'c';
    std::fprintf(stderr, "racer: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "racer: %s\n", e.what());
  }
  return 'x';
}

// One racer process: its own connection, opened after the fork; it waits
// for the start signal and writes one outcome byte per attempt.
[[noreturn]] void racer(const fs::path& dir, int id, int round, int go, int out) {
  std::string outcomes;
  try {
    auto cfg = test::volume_config(dir / "vol");
    auto st = Store::open(dir / "index.db", store_options());
    char c;
    if (::read(go, &c, 1) != 0) ::_exit(3);
    for (int a = 0; a < kAttempts; ++a) outcomes += attempt(cfg, st, plan(id, round, a));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "racer setup: %s\n", e.what());
    outcomes += 'x';
  }
  bool written = ::write(out, outcomes.data(), outcomes.size()) == static_cast<ssize_t>(outcomes.size());
  ::_exit(written ? 0 : 3);
}

// Forks the racers (the parent holds no connection), releases them at once
// and returns every outcome byte.
std::string race(const fs::path& dir, int round) {
  int go[2], results[2];
  if (::pipe(go) != 0 || ::pipe(results) != 0) return "pipe failed";
  std::vector<pid_t> kids;
  for (int i = 0; i < kRacers; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(results[0]);
      racer(dir, i, round, go[0], results[1]);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(results[1]);
  ::close(go[1]);  // EOF releases every racer at once
  std::string all;
  char buf[256];
  for (ssize_t n; (n = ::read(results[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
  ::close(results[0]);
  for (auto pid : kids) ::waitpid(pid, nullptr, 0);
  return all;
}

// Creates and migrates the database in a child, so the parent never opens
// a store before it forks.
bool create_database(const fs::path& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      Store::open(dir / "index.db", store_options());
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void mutate(const fs::path& root, int round) {
  for (int i = round; i < kFiles; i += 7) test::write_file(root / file_name(i), fmt::format("r{} f{}", round, i));
  for (int i = round + 3; i < kFiles; i += 29) fs::remove(root / file_name(i));
  test::write_file(root / fmt::format("added{}/x", round), "x");
  if (round == 2) fs::remove_all(root / "d1");
}

void expect_invariants(Db& db, const fs::path& root, std::int64_t attempts, std::int64_t conflicts) {
  auto count = [&](const std::string& sql) { return db.query_i64(sql).value_or(-1); };
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'running'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM runs r WHERE (SELECT count(*) FROM runs_audit a WHERE a.run_id = r.id AND "
                  "a.transition = 'finish') != 1"),
            0)
      << "every finished run has exactly one finish audit row";
  EXPECT_EQ(count("SELECT count(*) FROM runs"), attempts) << "one run row per attempt";
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'refused'"), conflicts);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status NOT IN ('success', 'refused')"), 0);
  EXPECT_LE(test::max_live_rows_per_path(db), 1);
  EXPECT_TRUE(db.query_rows("PRAGMA foreign_key_check").empty());
  auto vol = test::volume_id(db);
  EXPECT_THAT(test::folder_problems(db, vol), ::testing::IsEmpty());
  EXPECT_EQ(test::present_set(db, vol), test::disk_set(root));
}

}  // namespace

TEST(IndexStress, ConcurrentIndexAndAuditRunsKeepEveryInvariant) {
  test::TempDir dir;
  auto root = dir / "vol";
  for (int i = 0; i < kFiles; ++i) test::write_file(root / file_name(i), fmt::format("f{}", i % 50));
  // Round 0 is every racer's first index: all of them find no volume row
  // and race to insert it. The marker is laid down beforehand (as after a
  // crash between marker and row) so that no racer reads it half-written.
  test::write_file(root / ".squirrel-volume", engine::render_marker({"v", 1}));
  ASSERT_TRUE(create_database(dir.path()));
  std::int64_t attempts = 0, conflicts = 0;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) mutate(root, round);
    auto outcomes = race(dir.path(), round);
    EXPECT_EQ(outcomes.size(), static_cast<std::size_t>(kRacers * kAttempts)) << "round " << round;
    EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), 'x'), 0) << "round " << round << ": " << outcomes;
    EXPECT_GE(std::count(outcomes.begin(), outcomes.end(), 's'), 1) << "round " << round;
    attempts += static_cast<std::int64_t>(outcomes.size());
    conflicts += std::count(outcomes.begin(), outcomes.end(), 'c');
  }
  auto st = Store::open(dir / "index.db", store_options());
  expect_invariants(st.db(), root, attempts, conflicts);
}
