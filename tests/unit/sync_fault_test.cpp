// Fault injection at every transport call of a mirror push (spec
// sync-offload-restore.md §3.2 invariants, §6.5 stalls, §9 cases 1, 2 and 10).
//
// The scenario: a first sync, then the source changes (a modified file whose
// recorded version must be displaced, a new file in a new directory, a new
// file whose target holds foreign bytes, a file that becomes a directory, a
// directory that becomes a file, a local deletion), re-index. The state
// before the faulty push is saved once. For every call k of a clean push of
// that state and every fault kind (crash, power cut, EIO, ENOSPC, EACCES, a
// stall that never ends and one that completes late), the state is restored,
// the push runs with the fault at call k, and then a clean recovery push
// runs. The exhaustive sweep keeps one path in flight, so call k is the same
// operation in every run and a failure is reproduced by its k; a second
// sweep runs four paths in flight at random calls and prints its seed.
// Checked after the faulty push and after the recovery:
//  (1) every live / displaced ledger row's bytes are where the row says,
//      with the recorded BLAKE3;
//  (2) outside .squirrel-staging nothing that was at the destination before
//      the faulty push is lost or overwritten in place: every file is still
//      at its path or, byte-identical, in a history bucket under the same path;
//  (3) after the recovery push every present index path is live with its
//      current content (and the recovery push succeeds);
//  (4) no file outside staging and .squirrel-index holds bytes that are not
//      a whole known content (no partial file at a live path or in history);
//  (5) the evidence never advanced past what was durable: unless the faulty
//      push finished success, the vector and its log are exactly as before;
//  (6) a stalled call is given up (the push stops with one line saying so),
//      and no push to the destination starts until that call has returned.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <random>

#include "core/error.hpp"
#include "engine/dest/sftp/sftp.hpp"
#include "sftp_util.hpp"
#include "sshd_util.hpp"
#include "stall_util.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using dest::FaultPlan;
using engine::sync::SyncOptions;
using store::RunStatus;

namespace {

constexpr std::size_t kBatchFiles = 2;  // several batches, so crash points fall between them too

struct Kind {
  const char* name;
  FaultPlan::Kind kind;
  int err;
  bool completes = false;  // a stall that ends with the call doing its work late
};
constexpr Kind kKinds[] = {
    {"crash", FaultPlan::Kind::crash, 0},
    {"power_cut", FaultPlan::Kind::power_cut, 0},
    {"EIO", FaultPlan::Kind::error, EIO},
    {"ENOSPC", FaultPlan::Kind::error, ENOSPC},
    {"EACCES", FaultPlan::Kind::error, EACCES},
    {"stall", FaultPlan::Kind::stall, 0},             // hangs; once let go, fails having done nothing
    {"stall_late", FaultPlan::Kind::stall, 0, true},  // hangs; once let go, does its work after all
};

// A hung call: time passes (the clock the push's stall guard reads moves
// on) until the test opens the gate, after the push has given up on it.
struct Hang {
  std::shared_ptr<test::ManualClock> clock = std::make_shared<test::ManualClock>();
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
};

FaultPlan plan_for(const Kind& k, int at, const Hang& hang) {
  FaultPlan p;
  p.kind = k.kind;
  p.at_call = at;
  p.err = k.err;
  p.stall_completes = k.completes;
  if (k.kind == FaultPlan::Kind::stall)
    p.on_stall = [clock = hang.clock, gate = hang.gate] {
      gate->wait_while([&] { clock->advance(test::kTestStallTimeout); });
    };
  return p;
}

class SyncFault : public ::testing::Test {
 protected:
  SyncSandbox sb{"", fast_scratch_base()};
  // How the destination root is reached under the faults; empty: locally.
  engine::sync::TransportFactory open;
  Injected injected() const {
    Injected inj;
    if (open) inj.open = open;
    return inj;
  }
  std::string clean_method;  // what a clean push of the saved state records here
  fs::path saved = sb.tmp() / "saved";

  // What the destination and the records looked like before the faulty push.
  Tree before_tree;
  std::vector<VectorRow> before_vec;
  std::int64_t before_log = 0;
  std::int64_t before_last_run = 0;
  std::set<Digest> known;  // every whole content that may legitimately sit at the destination

  void SetUp() override {
    sb.write("a.txt", "alpha");
    sb.write("b.txt", "bravo");
    sb.write("dir/c.txt", "charlie");
    sb.write("swap", "a file that becomes a directory");
    sb.write("tree/t.txt", "a directory that becomes a file");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    auto first = sb.sync_init();
    ASSERT_EQ(first.status, RunStatus::success) << first.error;

    sb.write("a.txt", "alpha, second version");
    sb.remove("b.txt");
    sb.write("new/f.txt", "foxtrot");
    sb.write("dir/g.txt", "golf");
    sb.remove("swap");
    sb.write("swap/inner.txt", "now inside a directory");
    sb.remove("tree");
    sb.write("tree", "now a file");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    // Bytes squirrel never wrote, where the push must write.
    write_file(sb.vdest() / "dir/g.txt", "foreign golf");

    save();
    before_tree = tree_of(sb.vdest());
    before_vec = vector_rows(sb.db(), sb.vol_id());
    before_log = store::count_history(sb.db(), sb.vol_id(), "d");
    before_last_run = sb.db().query_i64("SELECT max(id) FROM runs").value_or(0);
    for (const auto& r : sb.db().query_rows("SELECT blake3 FROM contents")) known.insert(blob_digest(r[0]));
    for (const auto& [p, h] : files_of(before_tree)) known.insert(h);
  }

  // SQLite files are copied only while no connection is open.
  void save() {
    sb.close();
    copy_tree(sb.dest_root(), saved / "dest");
    copy_tree(sb.state(), saved / "state");
    sb.open();
  }
  void restore() {
    sb.close();
    copy_tree(saved / "dest", sb.dest_root());
    copy_tree(saved / "state", sb.state());
    sb.open();
  }

  // One path in flight unless asked: the transport calls then come in one
  // fixed order, so call k is the same operation in every run.
  SyncOptions options(engine::sync::TransportFactory f = {}, std::size_t in_flight = 1, const Hang* hang = nullptr) {
    SyncOptions o;
    o.batch_files = kBatchFiles;
    o.in_flight = in_flight;
    o.transport = std::move(f);
    if (hang) o.stall = test::stall_options(hang->clock);
    return o;
  }

  // Restores the saved state, runs a push with `kind` at call `k`, lets a
  // hung call go once the push has given up on it, and checks (1)-(6).
  // Returns "<kind>:<how the push ended>".
  std::string faulty_push(const Kind& kind, int k, std::size_t in_flight, const std::string& where) {
    restore();
    sb.events.clear();
    Hang hang;
    Injected inj = injected();
    bool threw = false;
    std::string what, message;
    try {
      auto r = sb.sync(options(inj.factory(plan_for(kind, k, hang)), in_flight, &hang));
      what = std::string(store::to_string(r.status));
    } catch (const dest::SimulatedCrash&) {
      threw = true;
      what = "crash";
    } catch (const std::exception& e) {
      threw = true;
      what = "error";
      message = e.what();
    }
    bool fired = inj.calls() >= k;
    if (fired && (kind.kind == FaultPlan::Kind::crash || kind.kind == FaultPlan::Kind::power_cut)) {
      EXPECT_TRUE(threw) << "a simulated crash was swallowed";
      EXPECT_TRUE(inj.fault && inj.fault->crashed());
    }
    if (fired && kind.kind == FaultPlan::Kind::stall) check_stall_handled(hang, what, message);
    hang.gate->open();
    test::await_given_up_calls_returned("d");

    // The process that crashed is gone: a new one opens the store.
    sb.close();
    sb.open();
    if (auto run = faulty_run(); run && run->status == RunStatus::running)
      store::finish_run(sb.db(), run->id, {RunStatus::aborted, "simulated crash", 0, std::nullopt});
    check_after_fault(where);
    auto recovery = sb.sync(options(open));
    check_after_recovery(where, recovery);
    return std::string(kind.name) + ":" + what;
  }

  // (6): while the hung call has not returned, the push that gave up on it
  // said so in one line, and a new push to the destination refuses.
  void check_stall_handled(const Hang& hang, const std::string& what, const std::string& message) {
    EXPECT_GT(dest::given_up_calls("d"), 0) << "the push returned while its hung call was not given up";
    if (what == "error") {
      EXPECT_NE(message.find("made no progress"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    // Not one path's failure: the push stopped instead of going on path by path.
    for (const auto& e : sb.events) {
      if (e.type == engine::sync::SyncEvent::Type::file_error) {
        EXPECT_EQ(e.message.find("progress"), std::string::npos) << e.path << ": " << e.message;
      }
    }
    SyncOptions probe = options();
    probe.dry_run = true;
    try {
      sb.sync(probe);
      ADD_FAILURE() << "a push started beside a hung call";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::refused);
      EXPECT_NE(std::string(e.what()).find("have not returned yet"), std::string::npos) << e.what();
    }
    (void)hang;
  }

  // The newest sync run after the saved state, if the faulty push made one.
  std::optional<store::RunRow> faulty_run() {
    auto id = sb.db().query_i64("SELECT max(id) FROM runs WHERE kind = 'sync' AND id > ?",
                                {store::Value{before_last_run}});
    if (!id) return std::nullopt;
    return store::get_run(sb.db(), *id);
  }

  // (2): every file that was there before is still at its path or, with
  // the same bytes, in some history bucket under the same path.
  std::vector<std::string> lost_or_overwritten(const Tree& after) {
    std::vector<std::string> out;
    auto now = files_of(after);
    std::map<std::string, std::set<Digest>> in_history;  // path below the bucket -> hashes
    const std::string hist = ".squirrel-history/";
    for (const auto& [p, h] : now) {
      if (!p.starts_with(hist)) continue;
      auto slash = p.find('/', hist.size());
      if (slash != std::string::npos) in_history[p.substr(slash + 1)].insert(h);
    }
    for (const auto& [p, h] : files_of(before_tree)) {
      if (starts_with_dir(p, ".squirrel-staging")) continue;
      auto it = now.find(p);
      if (it != now.end() && it->second == h) continue;
      std::string inner = p.starts_with(hist) ? "" : p;
      if (!inner.empty() && in_history[inner].count(h)) continue;
      out.push_back(p + (it == now.end() ? ": gone" : ": overwritten in place"));
    }
    return out;
  }

  // (4): nothing but whole known contents outside staging and the receipts.
  std::vector<std::string> partial_files(const Tree& after) {
    std::vector<std::string> out;
    for (const auto& [p, h] : files_of(after)) {
      if (p == engine::kMarkerName || starts_with_dir(p, ".squirrel-staging") || starts_with_dir(p, ".squirrel-index"))
        continue;
      if (!known.count(h)) out.push_back(p);
    }
    return out;
  }

  void check_after_fault(const std::string& where) {
    SCOPED_TRACE(where + " (after the faulty push)");
    auto after = tree_of(sb.vdest());
    EXPECT_EQ(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
    EXPECT_EQ(lost_or_overwritten(after), std::vector<std::string>{});
    EXPECT_EQ(partial_files(after), std::vector<std::string>{});
    EXPECT_LE(max_live_ledger_rows_per_path(sb.db()), 1);
    auto run = faulty_run();
    if (run && run->status == RunStatus::success) {
      // A push that says success landed everything.
      EXPECT_EQ(present_not_live(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
      EXPECT_TRUE(fs::is_regular_file(sb.vdest() / ".squirrel-index" / ("run-" + std::to_string(run->id))));
    } else {
      EXPECT_EQ(vector_rows(sb.db(), sb.vol_id()), before_vec) << "evidence moved without a successful push";
      EXPECT_EQ(store::count_history(sb.db(), sb.vol_id(), "d"), before_log);
    }
  }

  void check_after_recovery(const std::string& where, const engine::sync::SyncReport& r) {
    SCOPED_TRACE(where + " (after the recovery push)");
    EXPECT_EQ(r.status, RunStatus::success) << r.error;
    auto after = tree_of(sb.vdest());
    EXPECT_EQ(ledger_problems(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
    EXPECT_EQ(lost_or_overwritten(after), std::vector<std::string>{});
    EXPECT_EQ(partial_files(after), std::vector<std::string>{});
    EXPECT_EQ(present_not_live(sb.db(), sb.vol_id(), sb.vdest()), std::vector<std::string>{});
    EXPECT_LE(max_live_ledger_rows_per_path(sb.db()), 1);
    EXPECT_EQ(store::ledger_rows(sb.db(), "d", sb.vol_id(), {"committing", "displacing"}).size(), 0u)
        << "reconcile settled everything in flight";
    for (const auto& [p, n] : after)
      if (starts_with_dir(p, ".squirrel-staging")) { EXPECT_NE(n.type, 'f') << "left in staging: " << p; }
    // Evidence: exactly the snapshot of the recovery push, under the method
    // a clean push measures on this filesystem.
    auto snapshot = store::present_origin_maxima(sb.db(), sb.vol_id(), sb.st().self_node_id());
    auto vec = store::vector_of(sb.db(), sb.vol_id(), "d");
    ASSERT_EQ(vec.size(), snapshot.size());
    for (std::size_t i = 0; i < vec.size(); ++i) {
      EXPECT_EQ(vec[i].origin_run_id, snapshot[i].run_id);
      ASSERT_TRUE(vec[i].method);
      EXPECT_EQ(store::to_string(*vec[i].method), clean_method);
    }
    EXPECT_EQ(r.method, clean_method);
    // The foreign bytes were kept, in history, and named.
    bool foreign_kept = false;
    for (const auto& [p, h] : files_of(after))
      foreign_kept |= p.ends_with("/dir/g.txt") && h == blake3(std::string("foreign golf"));
    EXPECT_TRUE(foreign_kept);
    // Everything the source holds is at its path.
    EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "alpha, second version");
    EXPECT_EQ(read_bytes(sb.vdest() / "tree"), "now a file");
    EXPECT_EQ(read_bytes(sb.vdest() / "swap/inner.txt"), "now inside a directory");
    EXPECT_EQ(read_bytes(sb.vdest() / "b.txt"), "bravo") << "a local deletion never deletes at the destination";
  }
};

}  // namespace

// The scenario itself, without faults: it really exercises every move.
TEST_F(SyncFault, TheScenarioAddsModifiesAndDisplaces) {
  Injected inj;
  auto r = sb.sync(options(inj.factory()));
  ASSERT_EQ(r.status, RunStatus::success) << r.error;
  clean_method = r.method;
  EXPECT_TRUE(clean_method == "fingerprint-verified" || clean_method == "presence+size") << clean_method;
  EXPECT_EQ(r.written, 5);
  EXPECT_EQ(r.displaced, 3) << "a.txt, the swap file and tree/t.txt";
  EXPECT_EQ(r.displaced_unrecorded, 1);
  EXPECT_EQ(r.foreign, std::vector<std::string>{"dir/g.txt"});
  EXPECT_GT(inj.count("flush"), 3) << "several batches";
  check_after_fault("clean");
  check_after_recovery("clean", r);
}

// One kind of fault at every call of a push in turn, one path in flight,
// so call k is the same operation in every run and a failure reproduces by
// its kind and k. One test per kind keeps each sweep short enough to run
// beside the others.
class SyncFaultAtEveryCall : public SyncFault, public ::testing::WithParamInterface<std::size_t> {
 protected:
  void sweep();
};

TEST_P(SyncFaultAtEveryCall, CrashesPowerCutsOrFailsSafely) { sweep(); }

void SyncFaultAtEveryCall::sweep() {
  const Kind& kind = kKinds[GetParam()];
  // N: the calls of a clean push of the saved state.
  int n = 0;
  {
    Injected inj = injected();
    auto r = sb.sync(options(inj.factory()));
    ASSERT_EQ(r.status, RunStatus::success) << r.error;
    n = inj.calls();
    clean_method = r.method;
  }
  ASSERT_GT(n, 20);
  std::map<std::string, int> outcomes;
  for (int k = 1; k <= n && !HasFailure(); ++k) {
    std::string where = std::string(kind.name) + " at call " + std::to_string(k) + " of " + std::to_string(n);
    SCOPED_TRACE(where);
    outcomes[faulty_push(kind, k, 1, where)] += 1;
  }
  std::string summary;
  for (const auto& [k, v] : outcomes) summary += k + "=" + std::to_string(v) + " ";
  RecordProperty("outcomes", summary);
  std::string name = kind.name;
  if (kind.kind == FaultPlan::Kind::crash || kind.kind == FaultPlan::Kind::power_cut) {
    EXPECT_EQ(outcomes[name + ":crash"], n) << summary;
  } else if (kind.kind == FaultPlan::Kind::error) {
    // Faults late in the push end it partial, earlier ones fail it.
    EXPECT_GT(outcomes[name + ":partial"], 0) << summary;
    EXPECT_GT(outcomes[name + ":error"], 0) << summary;
  } else {
    // A stall is not one path's failure: the push stops (or, hung after its
    // finish, in the ride-along snapshot, keeps its success).
    EXPECT_GT(outcomes[name + ":error"], 0) << summary;
    EXPECT_EQ(outcomes[name + ":partial"], 0) << summary;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, SyncFaultAtEveryCall, ::testing::Range<std::size_t>(0, std::size(kKinds)),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return std::string(kKinds[param.param].name);
                         });

// The same sweep with every byte going through a real OpenSSH server on
// loopback to the same root: the SFTP transport inherits the layout's
// invariants under crashes, power cuts and failed calls.
class SyncFaultOverSftp : public SyncFaultAtEveryCall {
 protected:
  SyncFaultOverSftp() {
    open = [](const std::string& root) {
      static test::TempDir dir;
      static test::SshServer server(dir / "sshd");
      return dest::open_sftp_transport(test::sftp_options_for(server, root));
    };
  }
};

TEST_P(SyncFaultOverSftp, CrashesPowerCutsOrFailsSafely) { sweep(); }

INSTANTIATE_TEST_SUITE_P(Kinds, SyncFaultOverSftp, ::testing::Values<std::size_t>(0, 1),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return std::string(kKinds[param.param].name);
                         });

// Four paths in flight: which operation call k is depends on the threads,
// so faults land at random calls, reproducible by the printed seed
// (SQUIRREL_FAULT_SEED=<seed> reruns it). Only what every interleaving
// guarantees is checked: (1)-(6).
TEST_F(SyncFault, RandomCallsOfAPushWithFourPathsInFlightFailSafely) {
  constexpr std::size_t kInFlight = 4;
  constexpr int kRuns = 40;
  int n = 0;
  {
    Injected inj;
    auto r = sb.sync(options(inj.factory(), kInFlight));
    ASSERT_EQ(r.status, RunStatus::success) << r.error;
    n = inj.calls();
    clean_method = r.method;
  }
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SQUIRREL_FAULT_SEED"); s && *s) seed = std::strtoull(s, nullptr, 10);
  std::cout << "[ seed     ] SQUIRREL_FAULT_SEED=" << seed << "\n";
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("SQUIRREL_FAULT_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int run = 0; run < kRuns; ++run) {
    const Kind& kind = kKinds[rng() % std::size(kKinds)];
    int k = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(n));
    std::string where = std::string(kind.name) + " at call " + std::to_string(k) + " of about " + std::to_string(n);
    SCOPED_TRACE(where);
    faulty_push(kind, k, kInFlight, where);
    if (HasFailure()) break;
  }
}

// Every durability call of a push fails in turn (the local transport's
// fsync/syncfs hook): the flush it belongs to fails, and a failed flush
// fails the push before anything it was to cover is recorded — the
// evidence and the ledger stay as they were and the next push redoes the
// work. A failure after the finish (the ride-along snapshot) is that
// snapshot's warning; none is swallowed.
TEST_F(SyncFault, AFailedSyncCallFailsItsFlushAndThePushRecordsNothing) {
  auto count = std::make_shared<std::atomic<int>>(0);
  auto fail_at = std::make_shared<std::atomic<int>>(0);
  auto hook = [count, fail_at](int fd, bool whole_fs) -> int {
    if (++*count == fail_at->load()) {
      errno = EIO;
      return -1;
    }
    return whole_fs ? ::syncfs(fd) : ::fsync(fd);
  };
  dest::LocalSyncCalls calls{[hook](int fd) { return hook(fd, false); }, [hook](int fd) { return hook(fd, true); }};
  auto factory = [calls](const std::string& root) { return dest::open_local_transport(root, calls); };
  int m = 0;
  {
    auto r = sb.sync(options(factory));
    ASSERT_EQ(r.status, RunStatus::success) << r.error;
    clean_method = r.method;
    m = count->load();
  }
  ASSERT_GT(m, 3);
  int failed = 0, warned = 0;
  for (int k = 1; k <= m; ++k) {
    std::string where = "sync call " + std::to_string(k) + " of " + std::to_string(m) + " fails";
    SCOPED_TRACE(where);
    restore();
    *count = 0;
    *fail_at = k;
    try {
      auto r = sb.sync(options(factory));
      EXPECT_EQ(r.status, RunStatus::success) << r.error;
      EXPECT_NE(r.snapshot_warning.find("not known to be durable"), std::string::npos)
          << "a failed sync went unreported: " << r.snapshot_warning;
      warned += 1;
    } catch (const Error& e) {
      failed += 1;
      EXPECT_NE(std::string(e.what()).find("not known to be durable"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      auto run = faulty_run();
      ASSERT_TRUE(run);
      EXPECT_EQ(run->status, RunStatus::failed);
    }
    EXPECT_GE(count->load(), k) << "the failing sync call was never made";
    check_after_fault(where);
    check_after_recovery(where, sb.sync(options()));
    if (HasFailure()) break;
  }
  EXPECT_GT(failed, 0);
  RecordProperty("failed", failed);
  RecordProperty("snapshot_warnings", warned);
}

// A first push (with --init) crashed or power-cut at every call: the retry
// with --init finishes it. It passes the first-push gate because the crashed
// push left records, and a staged marker left by a dead bootstrap is redone.
TEST(SyncFaultFirstPush, ACrashedFirstPushCanBeRetried) {
  SyncSandbox fresh("", fast_scratch_base());
  fresh.write("one.txt", "1");
  fresh.write("two/three.txt", "3");
  ASSERT_EQ(fresh.index().status, RunStatus::success);
  int n = 0;
  {
    // Count the calls of a first push on a scratch copy of the state.
    fresh.close();
    copy_tree(fresh.state(), fresh.tmp() / "state-saved");
    fresh.open();
    Injected inj;
    SyncOptions o;
    o.init = true;
    o.transport = inj.factory();
    ASSERT_EQ(fresh.sync(o).status, RunStatus::success);
    n = inj.calls();
  }
  for (int k = 1; k <= 2 * n; ++k) {
    const Kind& kind = kKinds[k <= n ? 0 : 1];
    int at = k <= n ? k : k - n;
    SCOPED_TRACE(std::string(kind.name) + " at call " + std::to_string(at) + " of a first push");
    fresh.close();
    fs::remove_all(fresh.dest_root());
    copy_tree(fresh.tmp() / "state-saved", fresh.state());
    fresh.open();
    Injected inj;
    SyncOptions o;
    o.init = true;
    o.transport = inj.factory(plan_for(kind, at, Hang{}));
    EXPECT_THROW(fresh.sync(o), dest::SimulatedCrash);
    fresh.close();
    fresh.open();
    EXPECT_TRUE(ledger_problems(fresh.db(), fresh.vol_id(), fresh.vdest()).empty());
    if (count_runs(fresh.db(), "kind = 'sync' AND status = 'success'") == 0) {
      EXPECT_TRUE(store::vector_of(fresh.db(), fresh.vol_id(), "d").empty()) << "no evidence without a success";
    }
    // The retry: --init again (the marker may not have survived the cut).
    SyncOptions retry;
    retry.init = true;
    auto r = fresh.sync(retry);
    EXPECT_EQ(r.status, RunStatus::success) << r.error;
    EXPECT_TRUE(present_not_live(fresh.db(), fresh.vol_id(), fresh.vdest()).empty());
    EXPECT_TRUE(ledger_problems(fresh.db(), fresh.vol_id(), fresh.vdest()).empty());
    if (HasFailure()) break;
  }
}
