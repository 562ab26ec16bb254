// What the local transport's flush makes durable, seen through its sync
// hooks (spec sync-offload-restore.md §6.1-6.2: a flush covers every put and
// rename before it and the directories they touched), what a failed sync
// does, and the stall guard of §6.5 on a clock the tests move by hand.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/dest/transport.hpp"
#include "stall_util.hpp"
#include "test_util.hpp"

using namespace sq;
using namespace sq::dest;
namespace fs = std::filesystem;

namespace {

ReadFn reader_of(std::string data) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(data), 0);
  return [state](char* buf, std::size_t len) {
    auto& [bytes, off] = *state;
    std::size_t n = std::min(len, bytes.size() - off);
    std::memcpy(buf, bytes.data() + off, n);
    off += n;
    return n;
  };
}

void put_text(Transport& t, const std::string& name, const std::string& text) { t.put(name, reader_of(text), 1); }

using Inode = std::pair<dev_t, ino_t>;

Inode inode_of_fd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error("fstat failed");
  return {st.st_dev, st.st_ino};
}

Inode inode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat failed: " + p.string());
  return {st.st_dev, st.st_ino};
}

// Every fsync and syncfs the transport asks for, by what it was called on;
// with `fail_with` set, each one fails with that errno instead.
struct SyncLog {
  std::mutex mu;
  std::set<Inode> fsynced;
  std::set<dev_t> syncfs_devices;
  int calls = 0;
  int fail_with = 0;

  LocalSyncCalls calls_for() {
    auto note = [this](int fd, bool whole_fs) {
      std::lock_guard lock(mu);
      ++calls;
      auto id = inode_of_fd(fd);
      if (whole_fs) syncfs_devices.insert(id.first);
      else fsynced.insert(id);
      if (fail_with == 0) return 0;
      errno = fail_with;
      return -1;
    };
    return {[note](int fd) { return note(fd, false); }, [note](int fd) { return note(fd, true); }};
  }
  void clear() {
    std::lock_guard lock(mu);
    fsynced.clear();
    syncfs_devices.clear();
    calls = 0;
  }
  // Synced by an fsync of itself or a syncfs of its filesystem.
  bool covers(const Inode& id) {
    std::lock_guard lock(mu);
    return fsynced.count(id) || syncfs_devices.count(id.first);
  }
};

// Both flush strategies: per-file fsync (a memory filesystem, where syncfs
// is not trusted as a barrier) and, where the temp dir is ext4/xfs/btrfs,
// one syncfs.
class FlushObserved : public ::testing::TestWithParam<const char*> {
 protected:
  fs::path base() const {
    std::string which = GetParam();
    if (which == "shm" && fs::is_directory("/dev/shm")) return "/dev/shm";
    return fs::temp_directory_path();
  }
  void SetUp() override {
    std::string tmpl = (base() / "squirrel-flush-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root = tmpl;
    t = open_local_transport(root.string(), log->calls_for());
  }
  void TearDown() override {
    t.reset();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  // Runs `change`, flushes, and returns the touched names the flush did not cover.
  std::vector<std::string> uncovered_after(const std::function<void()>& change, const std::vector<std::string>& touched) {
    t->flush();
    log->clear();
    change();
    std::vector<Inode> ids;
    for (const auto& rel : touched) ids.push_back(inode_of(rel.empty() ? root : root / rel));
    EXPECT_EQ(log->calls, 0) << "nothing is synced before the flush";
    t->flush();
    std::vector<std::string> out;
    for (std::size_t i = 0; i < touched.size(); ++i)
      if (!log->covers(ids[i])) out.push_back(touched[i].empty() ? "(root)" : touched[i]);
    return out;
  }

  std::shared_ptr<SyncLog> log = std::make_shared<SyncLog>();
  fs::path root;
  std::unique_ptr<Transport> t;
};

}  // namespace

TEST_P(FlushObserved, FlushSyncsWhatEveryKindOfChangeTouched) {
  using V = std::vector<std::string>;
  // A put into new directories: the file, its directory and each created
  // directory's parent entry.
  EXPECT_EQ(uncovered_after([&] { put_text(*t, "p/q/one", "1"); }, {"p/q/one", "p/q", "p", ""}), V{});
  EXPECT_EQ(uncovered_after([&] { put_text(*t, "p/q/two", "2"); }, {"p/q/two", "p/q"}), V{});
  // A rename: both parents, and the directories made for the target.
  EXPECT_EQ(uncovered_after([&] { t->rename("p/q/two", "r/s/two"); }, {"p/q", "r/s", "r", ""}), V{});
  EXPECT_EQ(uncovered_after([&] { t->mkdirs("m/n"); }, {"m/n", "m", ""}), V{});
  EXPECT_EQ(uncovered_after([&] { t->remove("p/q/one"); }, {"p/q"}), V{});
}

TEST_P(FlushObserved, AFlushWithNothingToCoverSyncsNothing) {
  put_text(*t, "a", "A");
  t->flush();
  log->clear();
  t->flush();
  EXPECT_EQ(log->calls, 0);
}

// A failed sync fails the flush with its errno, in one line that says what
// is not known to be durable; the next flush does not report it again.
TEST_P(FlushObserved, AFailedSyncFailsTheFlush) {
  put_text(*t, "a/b", "B");
  log->fail_with = EIO;
  try {
    t->flush();
    ADD_FAILURE() << "a flush whose sync failed succeeded";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.err(), EIO);
    std::string what = e.what();
    EXPECT_NE(what.find("not known to be durable"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  log->fail_with = 0;
  EXPECT_NO_THROW(t->flush());
}

// Where files are fsynced one by one, more than a flush keeps open at once
// are synced early, and a failure then is reported by the next flush even
// if every sync of that flush succeeds. (Where one syncfs covers them,
// nothing is synced before the flush.)
TEST_P(FlushObserved, AFailedEarlySyncIsReportedByTheNextFlush) {
  log->fail_with = EIO;
  for (int i = 0; i < 200; ++i) put_text(*t, "many/" + std::to_string(i), "x");
  log->fail_with = 0;
  if (log->calls > 0) EXPECT_THROW(t->flush(), TransportError) << "an early sync failed";
  else EXPECT_NO_THROW(t->flush()) << "syncfs covers the files; nothing was synced early";
}

INSTANTIATE_TEST_SUITE_P(Local, FlushObserved, ::testing::Values("shm", "tmp"),
                         [](const ::testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

// ---- the stall guard -----------------------------------------------------------

namespace {

// A transport whose chosen call calls `hang` first (the test decides what
// hanging means: how the clock moves, when the gate opens), then does its
// work — late, the way a call blocked in the kernel completes.
class Hanging final : public ForwardingTransport {
 public:
  Hanging(std::unique_ptr<Transport> inner, std::string hang_on, std::function<void()> hang)
      : ForwardingTransport(std::shared_ptr<Transport>(std::move(inner))), hang_on_(std::move(hang_on)),
        hang_(std::move(hang)) {}
  Stat stat(const std::string& n) override {
    stats.fetch_add(1);
    return hang("stat"), ForwardingTransport::stat(n);
  }
  void rename(const std::string& a, const std::string& b) override {
    hang("rename");
    ForwardingTransport::rename(a, b);
  }
  void flush() override {
    hang("flush");
    ForwardingTransport::flush();
  }
  // Reads one chunk, hangs, then asks its source for the rest.
  PutResult put(const std::string& n, const ReadFn& read, std::int64_t m) override {
    if (hang_on_ != "put") return ForwardingTransport::put(n, read, m);
    bool first = true;
    return ForwardingTransport::put(n, [&](char* buf, std::size_t len) {
      if (!first) hang("put");
      first = false;
      return read(buf, len);
    }, m);
  }
  std::atomic<int> hung{0}, stats{0};

 private:
  void hang(const char* op) {
    if (hang_on_ != op) return;
    hang_();
    hung.fetch_add(1);
  }
  std::string hang_on_;
  std::function<void()> hang_;
};

constexpr const char* kDest = "stall-test";

struct Guarded {
  test::TempDir dir;
  fs::path root = [this] {
    fs::create_directories(dir / "root");
    return dir / "root";
  }();
  std::shared_ptr<test::ManualClock> clock = std::make_shared<test::ManualClock>();
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
  std::atomic<int> entered{0};
  Hanging* hanging = nullptr;  // owned by the guard (and by a hung call)
  std::unique_ptr<Transport> t;

  // By default a hung call waits at the gate while time keeps passing.
  explicit Guarded(const std::string& hang_on, std::function<void()> hang = {}) {
    if (!hang)
      hang = [c = clock, g = gate, e = &entered] {
        e->fetch_add(1);
        g->wait_while([&] { c->advance(test::kTestStallTimeout); });
      };
    auto h = std::make_unique<Hanging>(open_local_transport(root.string()), hang_on, std::move(hang));
    hanging = h.get();
    t = stall_guarded(std::move(h), test::stall_options(clock, kDest));
  }
  ~Guarded() {
    gate->open();
    test::await_given_up_calls_returned(kDest);
  }
};

std::string stall_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const StallError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// A call that hangs is given up after the timeout with one line that says
// so; it is counted until it returns; every later call is refused at once,
// without reaching the hung destination.
TEST(StallGuard, AHungCallIsGivenUpCountedAndLaterCallsAreRefused) {
  Guarded g("rename");
  put_text(*g.t, "a", "A");
  auto what = stall_message([&] { g.t->rename("a", "b"); });
  EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
  EXPECT_NE(what.find("cannot rename a"), std::string::npos) << what;
  EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  EXPECT_EQ(given_up_calls(kDest), 1);
  auto later = stall_message([&] { g.t->stat("a"); });
  EXPECT_NE(later.find("an earlier call"), std::string::npos) << later;
  g.gate->open();
  test::await_given_up_calls_returned(kDest);
  EXPECT_EQ(given_up_calls(kDest), 0);
  EXPECT_EQ(g.entered.load(), 1);
  EXPECT_EQ(g.hanging->stats.load(), 0) << "the refused call never reached the destination";
  EXPECT_TRUE(fs::exists(g.root / "b")) << "the hung rename completed late, as a kernel-blocked one does";
}

// A call that is slow but keeps making progress is never given up: here a
// put whose every chunk takes half the timeout.
TEST(StallGuard, ACallThatKeepsMakingProgressIsNeverGivenUp) {
  Guarded g("none");
  std::string data(5 << 20, 'x');
  std::size_t off = 0;
  auto r = g.t->put("big", [&](char* buf, std::size_t len) {
    g.clock->advance(test::kTestStallTimeout / 2);
    std::size_t n = std::min(len, data.size() - off);
    std::memcpy(buf, data.data() + off, n);
    off += n;
    return n;
  }, 1);
  EXPECT_EQ(r.bytes, static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(given_up_calls(kDest), 0);
}

// A put given up while it hangs never reads its caller's source again: the
// hung put asks for more once released, and gets an error instead.
TEST(StallGuard, AGivenUpPutNeverReadsItsCallersSourceAgain) {
  Guarded g("put");
  int reads = 0;
  std::string data(3 << 20, 'y');
  std::size_t off = 0;
  auto what = stall_message([&] {
    g.t->put("p", [&](char* buf, std::size_t len) {
      ++reads;
      std::size_t n = std::min(len, data.size() - off);
      std::memcpy(buf, data.data() + off, n);
      off += n;
      return n;
    }, 1);
  });
  EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
  g.gate->open();
  test::await_given_up_calls_returned(kDest);
  EXPECT_EQ(reads, 1);
  EXPECT_FALSE(fs::exists(g.root / "p")) << "the put that could not finish removed its file";
}

// A read of a got file that hangs is given up, and its late completion
// writes only the guard's own buffer, never the caller's.
TEST(StallGuard, AGivenUpReadNeverWritesTheCallersBuffer) {
  test::TempDir dir;
  fs::create_directories(dir / "root");
  auto clock = std::make_shared<test::ManualClock>();
  auto gate = std::make_shared<test::Gate>();
  struct SlowReader final : Reader {
    std::unique_ptr<Reader> inner;
    std::function<void()> hang;
    std::size_t read(char* buf, std::size_t len) override {
      hang();
      return inner->read(buf, len);
    }
    Stat stat() override { return inner->stat(); }
  };
  struct SlowGet final : ForwardingTransport {
    using ForwardingTransport::ForwardingTransport;
    std::function<void()> hang;
    std::unique_ptr<Reader> get(const std::string& n) override {
      auto r = std::make_unique<SlowReader>();
      r->inner = ForwardingTransport::get(n);
      r->hang = hang;
      return r;
    }
  };
  auto inner = std::make_unique<SlowGet>(std::shared_ptr<Transport>(open_local_transport((dir / "root").string())));
  inner->hang = [clock, gate] { gate->wait_while([&] { clock->advance(test::kTestStallTimeout); }); };
  auto t = stall_guarded(std::move(inner), test::stall_options(clock, kDest));
  put_text(*t, "f", std::string(1000, 'Q'));
  auto caller = std::make_unique<std::vector<char>>(4096, '.');
  {
    auto r = t->get("f");
    auto what = stall_message([&] { r->read(caller->data(), caller->size()); });
    EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
  }
  gate->open();
  test::await_given_up_calls_returned(kDest);
  EXPECT_EQ(std::string(caller->begin(), caller->end()), std::string(4096, '.'));
}

// A flush gets a second per MiB put since the last flush on top of the
// timeout: hung past the timeout but within that allowance it is waited
// for; past the allowance it is given up.
TEST(StallGuard, AFlushGetsASecondPerMiBPutSinceTheLastFlush) {
  Guarded* self = nullptr;
  Guarded g("flush", [&] {
    self->clock->advance(test::kTestStallTimeout + 3'000'000'000);  // within 8 s of allowance
    self->entered.fetch_add(1);
    self->gate->wait();
  });
  self = &g;
  put_text(*g.t, "big", std::string(8 << 20, 'z'));
  std::string what;
  std::atomic<bool> done{false};
  std::thread flusher([&] {
    what = stall_message([&] { g.t->flush(); });
    done = true;
  });
  while (g.entered.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  g.clock->await_reads(3);  // the guard looked at the clock since it moved
  EXPECT_FALSE(done.load()) << "given up within the allowance: " << what;
  EXPECT_EQ(given_up_calls(kDest), 0);
  g.clock->advance(6'000'000'000);  // now 9 s past the timeout
  flusher.join();
  EXPECT_NE(what.find("made no progress"), std::string::npos) << what;
}

// A destination that never stalls sees every call through the guard
// exactly as without it (the contract suite runs guarded too).
TEST(StallGuard, ATimeoutOfZeroMeansNoGuard) {
  test::TempDir dir;
  fs::create_directories(dir / "root");
  auto raw = open_local_transport((dir / "root").string());
  auto* p = raw.get();
  StallOptions o;
  o.timeout_ns = 0;
  EXPECT_EQ(stall_guarded(std::move(raw), o).get(), p);
}

// Helper threads of a caller that waits for them make their calls inline
// (on their own thread, no hand-off); one whose call stalls is left behind:
// wait() throws StallError, and once its call returns the helper parks
// instead of running on into code its caller has already left.
TEST(StallGuard, AHelperThreadsCallRunsInlineAndAStalledHelperIsLeftBehind) {
  std::thread::id ran_on;
  Guarded* self = nullptr;
  Guarded g("rename", [&] {
    ran_on = std::this_thread::get_id();
    self->entered.fetch_add(1);
    self->gate->wait_while([&] { self->clock->advance(test::kTestStallTimeout); });
  });
  self = &g;
  put_text(*g.t, "a", "A");
  std::thread::id helper_id;
  std::atomic<bool> ran_on_after_the_call{false};
  std::string what;
  {
    HelperThreads helpers(*g.t);
    helpers.spawn([&] {
      helper_id = std::this_thread::get_id();
      g.t->rename("a", "b");
      ran_on_after_the_call = true;
    });
    what = stall_message([&] { helpers.wait(); });
  }
  EXPECT_NE(what.find("cannot rename a: the call made no progress"), std::string::npos) << what;
  EXPECT_EQ(given_up_calls(kDest), 1);
  g.gate->open();
  test::await_given_up_calls_returned(kDest);
  EXPECT_EQ(ran_on, helper_id) << "the call was handed to another thread";
  EXPECT_TRUE(fs::exists(g.root / "b")) << "the rename completed late";
  EXPECT_FALSE(ran_on_after_the_call.load()) << "a helper left behind came back into its caller's code";
}

// Without a stall guard they are plain threads, and wait() passes on what
// a body let escape.
TEST(StallGuard, HelperThreadsOfAnUnguardedTransportArePlainThreads) {
  test::TempDir dir;
  fs::create_directories(dir / "root");
  auto t = open_local_transport((dir / "root").string());
  HelperThreads helpers(*t);
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) helpers.spawn([&] { ran.fetch_add(1); });
  helpers.spawn([] { throw std::runtime_error("from a helper"); });
  EXPECT_THROW(helpers.wait(), std::runtime_error);
  EXPECT_EQ(ran.load(), 3);
}
