// The index's batch sink: one write transaction spans the batches of a
// commit interval, finish() leaves everything committed and the write lock
// free, a quiet producer does not keep the lock, and what was not committed
// when the sink goes away without finish() (or after a failure) is rolled
// back.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "engine/batch_sink.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace std::chrono_literals;

namespace {

class BatchSinkTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  store::Store st = test::open_store(dir);
  std::int64_t vol = store::create_volume(st.db(), "v", "/v").id;
  std::int64_t run_id = store::begin_run(st.db(), {store::RunKind::index, vol, ""}).run_id;

  std::unique_ptr<engine::BatchSink> sink(engine::BatchSink::Clock::duration every) {
    return std::make_unique<engine::BatchSink>(store::open_peer_connection(st.db()), vol, run_id, 2, every);
  }

  static std::vector<store::Observation> batch(const std::string& prefix, int n, std::int64_t size = 0) {
    std::vector<store::Observation> out;
    for (int i = 0; i < n; ++i) {
      auto body = prefix + std::to_string(i);
      out.push_back({"d/" + body, blake3(body), size ? size : static_cast<std::int64_t>(body.size()), 1, 0});
    }
    return out;
  }

  // Counted on a connection of its own, as another process would see it.
  std::int64_t committed_rows() {
    auto other = store::Db::open(dir / "index.db", {.create = false, .read_only = true});
    return other.query_i64("SELECT count(*) FROM files").value_or(-1);
  }

  // Whether another connection gets the write lock without waiting.
  bool write_lock_free() {
    auto other = store::Db::open(dir / "index.db", {.create = false, .read_only = false});
    sqlite3_busy_timeout(other.handle(), 0);
    if (sqlite3_exec(other.handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
    sqlite3_exec(other.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return true;
  }
};

TEST_F(BatchSinkTest, FinishCommitsEveryBatchAndFreesTheWriteLock) {
  auto s = sink(24h);
  s->push(batch("a", 100));
  s->push(batch("b", 100));
  s->push(batch("c", 100));
  s->finish();
  EXPECT_EQ(committed_rows(), 300);
  EXPECT_TRUE(write_lock_free()) << "finish() returned with the transaction still open";
}

TEST_F(BatchSinkTest, CommittingAfterEveryBatchAppliesThemAll) {
  auto s = sink(0s);
  for (char c : std::string("abcdef")) s->push(batch(std::string(1, c), 50));
  s->finish();
  EXPECT_EQ(committed_rows(), 300);
  EXPECT_TRUE(write_lock_free());
}

// A producer that goes quiet (hashing one huge file) must not hold the write
// lock until its next batch: the sink commits when the interval runs out.
// Waits for that without a time limit of its own; ctest's timeout is the bound.
TEST_F(BatchSinkTest, AQuietProducerDoesNotKeepTheWriteLock) {
  auto s = sink(20ms);
  s->push(batch("a", 10));
  while (committed_rows() != 10 || !write_lock_free()) std::this_thread::sleep_for(10ms);
  s->push(batch("b", 10));
  s->finish();
  EXPECT_EQ(committed_rows(), 20);
}

TEST_F(BatchSinkTest, WithoutFinishWhatIsNotCommittedIsRolledBack) {
  {
    auto s = sink(24h);
    s->push(batch("a", 100));
    s->push(batch("b", 100));
  }
  EXPECT_EQ(committed_rows(), 0);
  EXPECT_TRUE(write_lock_free());
}

// The bad batch names a known digest with another size; the whole open
// transaction, including the good batch before it, is rolled back.
TEST_F(BatchSinkTest, AFailedBatchIsRethrownAndItsTransactionRolledBack) {
  store::apply_index_batch(st.db(), vol, run_id, batch("known", 1));
  auto s = sink(24h);
  s->push(batch("good", 100));
  s->push(batch("known", 1, 999));
  EXPECT_THROW(
      {
        s->push(batch("late", 1));
        s->finish();
      },
      Error);
  EXPECT_EQ(committed_rows(), 1) << "only the row committed before the sink";
  EXPECT_TRUE(write_lock_free());
}

}  // namespace
