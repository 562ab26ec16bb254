// A killed offload never orphans bytes (issue 12 §2). The kill is injected
// through the code path: a forked child runs the offload and SIGKILLs
// itself right before, or right after, its k-th unlink — for every k. After
// each kill the next command settles what the offload meant to do, and
// every file is either on disk and `present`, or gone and `offloaded`; a
// restore then brings every file back byte-identical.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/index.hpp"
#include "engine/offload/offload.hpp"
#include "engine/restore/restore.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> kFiles = {
    {"a.txt", "alpha"}, {"b/b1.txt", "bravo one"}, {"b/b2.txt", "bravo two"}, {"c.txt", "charlie"}, {"d/e/f.txt", "foxtrot"}};

std::string with_offload_policy(const SyncSandbox& sb) {
  auto text = SyncSandbox::config_text(sb.src(), sb.dest_root());
  return text.replace(text.find("sync_to = ['d']\n"), 16, "sync_to = ['d']\noffload_requires = ['d']\n");
}

class KilledOffload : public ::testing::Test {
 protected:
  SyncSandbox sb{"", fs::temp_directory_path()};

  void SetUp() override {
    sb.set_config(with_offload_policy(sb));
    for (const auto& [rel, bytes] : kFiles) sb.write(rel, bytes);
    ASSERT_EQ(sb.index().status, store::RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, store::RunStatus::success);
  }

  // Runs `offload v .` in a child that kills itself at unlink k (before or
  // after it); returns the number of unlinks the child reached.
  void offload_killed_at(std::int64_t k, bool after) {
    sb.close();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      store::StoreOptions o;
      o.node_name = "testnode";
      auto st = store::Store::open(sb.db_path(), o);
      engine::OffloadOptions off;
      off.selectors = {"."};
      off.on_unlink = [&](std::int64_t n, bool is_after) {
        if (n == k && is_after == after) ::raise(SIGKILL);
      };
      try {
        engine::run_offload(sb.cfg(), st, "v", off);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);  // the kill point was never reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    sb.open();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child did not die at unlink " << k;
  }

  std::string status_of(const std::string& rel) {
    auto [folder, name] = store::split_path(rel);
    auto rows = sb.db().query_rows(
        "SELECT f.status FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND f.name = ? AND "
        "f.status != 'superseded'",
        {store::blob_of(folder), store::blob_of(name)});
    return rows.empty() ? "(none)" : std::get<std::string>(rows[0][0]);
  }

  // Every file is on disk and present, or gone and offloaded. Returns how
  // many are gone.
  int expect_settled(const std::string& when) {
    int gone = 0;
    for (const auto& [rel, bytes] : kFiles) {
      bool on_disk = fs::exists(sb.src() / rel);
      gone += on_disk ? 0 : 1;
      EXPECT_EQ(status_of(rel), on_disk ? "present" : "offloaded") << rel << " " << when;
      if (on_disk) {
        EXPECT_EQ(read_bytes(sb.src() / rel), bytes) << rel;
      }
    }
    return gone;
  }
};

TEST_F(KilledOffload, AKillBeforeOrAfterEveryUnlinkIsSettledByTheNextIndexAndRestoreBringsEverythingBack) {
  for (std::int64_t k = 1; k <= static_cast<std::int64_t>(kFiles.size()); ++k) {
    for (bool after : {false, true}) {
      SCOPED_TRACE("kill " + std::string(after ? "after" : "before") + " unlink " + std::to_string(k));
      offload_killed_at(k, after);
      auto indexed = sb.index();
      EXPECT_EQ(indexed.missing, 0) << "a file the offload unlinked was called missing";
      EXPECT_EQ(indexed.settled_offloaded, k - 1 + (after ? 1 : 0));
      EXPECT_EQ(expect_settled("after the next index"), k - 1 + (after ? 1 : 0));
      EXPECT_EQ(sb.db().query_i64("SELECT count(*) FROM offload_intents"), 0);
      auto restored = engine::run_restore(sb.cfg(), sb.st(), "v", {});
      EXPECT_EQ(restored.status, store::RunStatus::success);
      EXPECT_EQ(expect_settled("after the restore"), 0);
      // Revived rows changed status after the last push: push again, so
      // the next kill point starts from a volume offload accepts whole.
      ASSERT_EQ(sb.sync().status, store::RunStatus::success);
    }
  }
}

TEST_F(KilledOffload, TheNextRestoreSettlesTheKilledOffloadAndBringsItsFilesBack) {
  offload_killed_at(3, true);
  auto rep = engine::run_restore(sb.cfg(), sb.st(), "v", {});
  EXPECT_EQ(rep.settled_offloaded, 3);
  EXPECT_EQ(rep.restored, 3);
  EXPECT_EQ(rep.revived, 3);
  EXPECT_EQ(rep.status, store::RunStatus::success);
  EXPECT_EQ(expect_settled("after the restore"), 0);
}

TEST_F(KilledOffload, TheNextSyncSettlesTheKilledOffloadInsteadOfFailingOnTheGoneFiles) {
  offload_killed_at(2, true);
  auto synced = sb.sync();
  EXPECT_EQ(synced.status, store::RunStatus::success) << synced.error;
  EXPECT_EQ(expect_settled("after the sync"), 2);
}

TEST_F(KilledOffload, ARunningOffloadsIntentsAreSettledOnlyOnceItIsOver) {
  // An offload still running holds the gate: an index is refused and
  // settles nothing, so it can never race the unlinks.
  auto run = store::begin_run_or_throw(sb.db(), {store::RunKind::offload, sb.vol_id(), ""});
  auto content = sb.db().query_i64("SELECT content_id FROM files WHERE name = ?", {store::blob_of("a.txt")});
  ASSERT_TRUE(content);
  store::record_offload_intents(sb.db(), sb.vol_id(), run, {{"a.txt", *content}});
  fs::remove(sb.src() / "a.txt");
  EXPECT_THROW(sb.index(), Error);
  EXPECT_EQ(status_of("a.txt"), "present");
  store::finish_run(sb.db(), run, {store::RunStatus::aborted, "gone", 0, std::nullopt});
  EXPECT_EQ(sb.index().settled_offloaded, 1);
  EXPECT_EQ(status_of("a.txt"), "offloaded");
}

}  // namespace
