// `squirrel restore` (spec sync-offload-restore.md §5.1): an interrupted
// restore never leaves a truncated or unverified file at any path, and a
// restore without an index (a fresh machine) checks the mirror against the
// receipts: good files come back, a damaged copy is refused, a file no
// receipt names comes back with a warning count. A file whose own copy was
// lost comes back from another copy of its content; a re-pointed volume
// leaves a refused run; the temp file of a restore killed mid-file is
// removed by the next restore, and nothing that merely looks like one.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "engine/offload/offload.hpp"
#include "engine/restore/restore.hpp"
#include "engine/sync/verify.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;
using engine::RestoreOptions;
using engine::RestoreReport;
using store::RunStatus;

namespace {

// ---- a source whose k-th fetched file breaks mid-stream ------------------------

// Delivers the first half of the inner reader's bytes, then fails the way
// `fail` says.
class BreakingReader final : public dest::Reader {
 public:
  BreakingReader(std::unique_ptr<dest::Reader> inner, std::function<void()> fail)
      : inner_(std::move(inner)), left_(inner_->stat().size / 2), fail_(std::move(fail)) {}
  std::size_t read(char* buf, std::size_t len) override {
    if (left_ <= 0) fail_();
    std::size_t n = inner_->read(buf, std::min<std::size_t>(len, static_cast<std::size_t>(left_)));
    left_ -= static_cast<std::int64_t>(n);
    return n;
  }
  dest::Stat stat() override { return inner_->stat(); }

 private:
  std::unique_ptr<dest::Reader> inner_;
  std::int64_t left_;
  std::function<void()> fail_;
};

// Forwards to the local transport; the `break_at`-th get() of a restored
// file (the marker and receipts do not count) breaks half way through.
// `broke` outlives the transport, which the restore owns and destroys.
class MidStreamFault final : public dest::ForwardingTransport {
 public:
  MidStreamFault(std::unique_ptr<dest::Transport> inner, int break_at, std::function<void()> fail,
                 std::shared_ptr<bool> broke)
      : ForwardingTransport(std::move(inner)), break_at_(break_at), fail_(std::move(fail)), broke_(std::move(broke)) {}
  std::unique_ptr<dest::Reader> get(const std::string& n) override {
    auto r = ForwardingTransport::get(n);
    bool data = n.find("/.squirrel-") == std::string::npos;
    if (!data || ++gets_ != break_at_) return r;
    *broke_ = true;
    return std::make_unique<BreakingReader>(std::move(r), fail_);
  }

 private:
  int break_at_;
  std::function<void()> fail_;
  std::shared_ptr<bool> broke_;
  int gets_ = 0;
};

// ---- the sandbox ------------------------------------------------------------------

// Contents big enough to span several copy buffers (and the direct-write
// path with an unaligned tail), and small ones.
std::string big_content(char seed, std::size_t size) {
  std::string s(size, '\0');
  std::uint32_t x = static_cast<unsigned char>(seed) * 2654435761u + 1;
  for (auto& c : s) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  return s;
}

class Restore : public ::testing::Test {
 protected:
  // On the real disk (not tmpfs), so the O_DIRECT write path is the one tested.
  SyncSandbox sb{"", fs::temp_directory_path()};
  std::map<std::string, std::string> originals;  // path -> bytes, as indexed and synced

  void put(const std::string& rel, const std::string& bytes) {
    sb.write(rel, bytes);
    originals[rel] = bytes;
  }

  void SetUp() override {
    put("big.bin", big_content('b', (5 << 20) + 123));
    put("dir/huge.bin", big_content('h', (9 << 20) + 4096));
    put("dir/small.txt", "small");
    put("a.txt", "alpha");
    ASSERT_EQ(sb.index().status, RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, RunStatus::success);
  }

  fs::path out() const { return sb.tmp() / "out"; }

  RestoreReport restore(RestoreOptions o = {}) {
    if (o.to.empty()) o.to = out().string();
    events.clear();
    return engine::run_restore(sb.cfg(), sb.st(), "v", o, [this](const engine::RestoreEvent& e) { events.push_back(e); });
  }

  // Every entry under the target is a directory or a regular file at an
  // original path holding exactly the original bytes. Returns what is not.
  std::vector<std::string> not_absent_or_identical(const fs::path& root) {
    std::vector<std::string> out;
    for (const auto& [rel, node] : tree_of(root)) {
      if (node.type == 'd') continue;
      auto it = originals.find(rel);
      if (node.type != 'f' || it == originals.end()) out.push_back(rel + ": not an original file");
      else if (node.hash != blake3(it->second)) out.push_back(rel + ": other bytes than the original (truncated?)");
    }
    return out;
  }

  // A fresh machine: the same config, a database that never saw the volume.
  void forget_index() {
    sb.close();
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(sb.db_path().string() + suffix);
    sb.open();
  }

  std::vector<engine::RestoreEvent> events;
};

// ---- an interrupted restore ------------------------------------------------------

// Every restored file is broken mid-stream in turn, by an I/O error (the
// restore goes on with the others) and by a crash (the restore stops).
TEST_F(Restore, InterruptedMidStreamLeavesNoTruncatedFileAtAnyPath) {
  std::map<std::string, std::function<void()>> failures = {
      {"EIO", [] { throw dest::TransportError(EIO, "simulated read failure mid-stream"); }},
      {"crash", [] { throw dest::SimulatedCrash("simulated crash mid-stream"); }},
  };
  for (const auto& failure : failures) {
    // Named copies, not structured bindings: clang 14 cannot capture those.
    const std::string& kind = failure.first;
    const std::function<void()>& fail = failure.second;
    for (int k = 1; k <= static_cast<int>(originals.size()); ++k) {
      SCOPED_TRACE(kind + " at file " + std::to_string(k));
      fs::remove_all(out());
      auto broke = std::make_shared<bool>(false);
      RestoreOptions o;
      o.files_in_flight = 1;
      o.transport = [&](const std::string& root) {
        return std::make_unique<MidStreamFault>(dest::open_local_transport(root), k, fail, broke);
      };
      std::optional<RestoreReport> rep;
      if (kind == "crash") EXPECT_THROW(restore(o), dest::SimulatedCrash);
      else rep = restore(o);
      EXPECT_TRUE(*broke) << "the fault never fired: the test would prove nothing";
      EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
      if (rep) {
        EXPECT_EQ(rep->failed, 1);
        EXPECT_EQ(rep->restored, static_cast<std::int64_t>(originals.size()) - 1);
        EXPECT_EQ(rep->status, RunStatus::partial);
      }
      EXPECT_EQ(count_runs(sb.db(), "kind = 'restore' AND status = 'running'"), 0) << "every restore run is terminal";
    }
  }
}

// A crash, power cut or error at every transport call of a restore.
TEST_F(Restore, FaultAtEveryTransportCallLeavesNoPartialFile) {
  struct Kind {
    const char* name;
    dest::FaultPlan::Kind kind;
    int err;
  };
  const Kind kinds[] = {{"crash", dest::FaultPlan::Kind::crash, 0},
                        {"power_cut", dest::FaultPlan::Kind::power_cut, 0},
                        {"EIO", dest::FaultPlan::Kind::error, EIO}};
  std::map<std::string, int> outcomes;
  for (const auto& kind : kinds) {
    for (int k = 1;; ++k) {
      SCOPED_TRACE(std::string(kind.name) + " at call " + std::to_string(k));
      fs::remove_all(out());
      Injected inj;
      RestoreOptions o;
      o.files_in_flight = 1;  // the fault transport is meant for one thread
      o.transport = inj.factory({kind.kind, k, kind.err, {}});
      auto runs_before = count_runs(sb.db(), "kind = 'restore'");
      std::string how;
      std::optional<RestoreReport> rep;
      try {
        rep = restore(o);
        how = std::string(store::to_string(rep->status));
      } catch (const dest::SimulatedCrash&) {
        how = "crash";
      } catch (const Error&) {
        how = "error";
      }
      if (inj.calls() < k) {
        // The restore made fewer calls: every call point was covered, and
        // without a fault it succeeds.
        EXPECT_EQ(how, "success");
        break;
      }
      outcomes[std::string(kind.name) + ":" + how] += 1;
      EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
      // The fault fired: a crash ends the restore, and an error is never
      // reported as a clean success of every file.
      if (kind.kind != dest::FaultPlan::Kind::error) {
        EXPECT_EQ(how, "crash");
      } else if (rep && rep->status == RunStatus::success) {
        EXPECT_EQ(rep->restored, static_cast<std::int64_t>(originals.size()))
            << "a restore hit by an I/O error claims success without every file";
      }
      EXPECT_LE(count_runs(sb.db(), "kind = 'restore'"), runs_before + 1);
      EXPECT_EQ(count_runs(sb.db(), "kind = 'restore' AND status = 'running'"), 0) << "every restore run is terminal";
    }
  }
  std::string summary;
  for (const auto& [k, v] : outcomes) summary += k + "=" + std::to_string(v) + " ";
  RecordProperty("outcomes", summary);
  EXPECT_GT(outcomes["crash:crash"], 0) << summary;
  EXPECT_GT(outcomes["power_cut:crash"], 0) << summary;
  EXPECT_GT(outcomes["EIO:error"] + outcomes["EIO:partial"] + outcomes["EIO:failed"], 0) << summary;
}

TEST_F(Restore, CleanRestoreIsByteIdentical) {
  auto rep = restore();
  EXPECT_EQ(rep.status, RunStatus::success);
  EXPECT_EQ(rep.restored, static_cast<std::int64_t>(originals.size()));
  EXPECT_FALSE(rep.without_index);
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
  EXPECT_EQ(files_of(tree_of(out())).size(), originals.size());
  EXPECT_EQ(mtime_ns(out() / "big.bin"), mtime_ns(sb.src() / "big.bin"));
}

// ---- durability: a batch is flushed before any of its files gets its name ------------

// What is under the target when the file system is flushed: original names
// and restore temps.
struct AtFlush {
  std::size_t named = 0, temps = 0;
};

AtFlush look_at(const fs::path& root, const std::map<std::string, std::string>& originals) {
  AtFlush a;
  for (const auto& [rel, node] : tree_of(root)) {
    if (node.type != 'f') continue;
    if (originals.count(rel)) a.named += 1;
    else if (fs::path(rel).filename().string().starts_with(".squirrel-restore-")) a.temps += 1;
  }
  return a;
}

// Options whose flush first records what is under `root`, then flushes.
RestoreOptions looking_at_each_flush(fs::path root, const std::map<std::string, std::string>& originals,
                                     std::vector<AtFlush>& seen) {
  RestoreOptions o;
  o.flush_filesystem = [root, &originals, &seen](int dir) {
    seen.push_back(look_at(root, originals));
    return ::syncfs(dir) == 0 ? 0 : errno;
  };
  return o;
}

TEST_F(Restore, NoFileGetsItsNameBeforeItsBatchIsFlushed) {
  std::vector<AtFlush> seen;
  auto rep = restore(looking_at_each_flush(out(), originals, seen));
  EXPECT_EQ(rep.status, RunStatus::success);
  ASSERT_EQ(seen.size(), 1u) << "four files are one batch on one file system";
  EXPECT_EQ(seen[0].named, 0u);
  EXPECT_EQ(seen[0].temps, originals.size()) << "every file waits, verified, under its temp name";
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
  EXPECT_EQ(files_of(tree_of(out())).size(), originals.size());
}

TEST_F(Restore, AFailedFlushGivesNoFileItsNameAndLeavesNoTemp) {
  RestoreOptions o;
  o.flush_filesystem = [](int) { return EIO; };
  auto rep = restore(o);
  EXPECT_NE(rep.status, RunStatus::success);
  EXPECT_EQ(rep.restored, 0);
  EXPECT_EQ(rep.failed, static_cast<std::int64_t>(originals.size()));
  EXPECT_TRUE(files_of(tree_of(out())).empty()) << "neither a name nor a temp stays";
  auto flush_errors = std::count_if(events.begin(), events.end(), [](const engine::RestoreEvent& e) {
    return e.type == engine::RestoreEvent::Type::file_error && e.message.find("cannot flush") != std::string::npos;
  });
  EXPECT_EQ(flush_errors, static_cast<long>(originals.size()));
  // The next restore, with a working flush, brings everything back.
  EXPECT_EQ(restore().restored, static_cast<std::int64_t>(originals.size()));
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
}

// More files than one batch holds: at each flush, everything the previous
// batch staged has its name and nothing else does.
TEST_F(Restore, EachBatchIsNamedOnlyAfterItsOwnFlush) {
  for (int i = 0; i < 2100; ++i) put("many/f" + std::to_string(i), "file " + std::to_string(i));
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  std::vector<AtFlush> seen;
  auto rep = restore(looking_at_each_flush(out(), originals, seen));
  EXPECT_EQ(rep.status, RunStatus::success);
  ASSERT_GE(seen.size(), 2u);
  std::size_t staged = 0;
  for (std::size_t k = 0; k < seen.size(); ++k) {
    EXPECT_EQ(seen[k].named, staged) << "flush " << k;
    EXPECT_GT(seen[k].temps, 0u) << "flush " << k;
    staged += seen[k].temps;
  }
  EXPECT_EQ(staged, originals.size());
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
}

// ---- a copy found under another path ---------------------------------------------

// Content is the entity: offload accepts a verified copy of a file's bytes
// wherever it lies at the destination, so restore must find it there too.
// a.txt and copy.txt hold the same bytes; a.txt's own copy is corrupted,
// verify demotes it, offload still removes a.txt (copy.txt's copy backs
// it), and restore brings a.txt back from copy.txt's copy.
TEST_F(Restore, OffloadedFileWhoseOwnCopyIsLostComesBackFromAnotherCopyOfItsContent) {
  std::string text = SyncSandbox::config_text(sb.src(), sb.dest_root());
  text.replace(text.find("sync_to = ['d']\n"), 16, "sync_to = ['d']\noffload_requires = ['d']\n");
  sb.set_config(text);
  put("copy.txt", originals["a.txt"]);
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  auto old_mtime = mtime_ns(sb.vdest() / "a.txt");
  write_file(sb.vdest() / "a.txt", "ALPHA");  // same size, other bytes
  set_mtime_ns(sb.vdest() / "a.txt", old_mtime);
  engine::sync::VerifyOptions full;
  full.full = true;
  auto verified = engine::sync::run_verify(sb.cfg(), sb.st(), "d", full);
  ASSERT_EQ(verified.findings.size(), 1u);
  EXPECT_EQ(verified.findings[0].path, "a.txt");
  // The finding latched an alarm, which refuses every offload to d until a
  // person acknowledges it (or a clean pass clears it).
  ASSERT_TRUE(engine::sync::acknowledge_alarm(sb.db(), "d", "tester"));

  engine::OffloadOptions off;
  off.selectors = {"a.txt"};
  auto offloaded = engine::run_offload(sb.cfg(), sb.st(), "v", off);
  ASSERT_EQ(offloaded.offloaded, 1) << "the offload gate no longer accepts another copy of the content";
  ASSERT_FALSE(fs::exists(sb.src() / "a.txt"));

  RestoreOptions o;
  o.selectors = {"a.txt"};
  auto rep = engine::run_restore(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(rep.no_copy, 0);
  EXPECT_EQ(rep.restored, 1);
  EXPECT_EQ(rep.revived, 1);
  EXPECT_EQ(rep.status, RunStatus::success);
  EXPECT_EQ(read_bytes(sb.src() / "a.txt"), originals["a.txt"]);
  EXPECT_EQ(read_bytes(sb.vdest() / "a.txt"), "ALPHA") << "restore never writes to the destination";
}

// Another path's copy is hashed while streamed like any other: damaged
// bytes are refused and never reach the target.
TEST_F(Restore, AnotherCopyOfTheContentIsHashedWhileStreamed) {
  put("copy.txt", originals["a.txt"]);
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  // Both copies lost per the ledger, then copy.txt's bytes damaged.
  sb.db().execute("UPDATE remote_paths SET state = 'lost' WHERE name = CAST('a.txt' AS BLOB)");
  write_file(sb.vdest() / "copy.txt", "ALPHA");
  RestoreOptions o;
  o.selectors = {"a.txt"};
  auto rep = restore(o);
  EXPECT_EQ(rep.no_copy, 0) << "copy.txt's ledger row is a copy of a.txt's content";
  EXPECT_EQ(rep.mismatched, 1);
  EXPECT_FALSE(fs::exists(out() / "a.txt"));
}

// A file's own copy damaged without anyone knowing yet (the ledger still
// says live): the bytes come from another copy of the content, the damaged
// copy is named, and the run is partial until verify records it.
TEST_F(Restore, AFileWhoseOwnCopyTurnsOutDamagedComesFromAnotherCopy) {
  put("copy.txt", originals["a.txt"]);
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  write_file(sb.vdest() / "a.txt", "ALPHA");  // same size, other bytes
  RestoreOptions o;
  o.selectors = {"a.txt"};
  auto rep = restore(o);
  EXPECT_EQ(rep.restored, 1);
  EXPECT_EQ(rep.failed, 0);
  EXPECT_EQ(rep.mismatched, 1);
  EXPECT_EQ(rep.other_copy, 1);
  EXPECT_EQ(rep.status, RunStatus::partial) << "the damaged copy is a finding";
  EXPECT_EQ(read_bytes(out() / "a.txt"), originals["a.txt"]);
  bool named = std::any_of(events.begin(), events.end(), [](const engine::RestoreEvent& e) {
    return e.type == engine::RestoreEvent::Type::warning && e.path == "a.txt" &&
           e.message.find("v/a.txt") != std::string::npos && e.message.find("v/copy.txt") != std::string::npos;
  });
  EXPECT_TRUE(named) << "the warning names the damaged copy and the one used";

  // With every copy damaged the file fails, with its own copy's error.
  write_file(sb.vdest() / "copy.txt", "ALPHA");
  fs::remove_all(out());
  auto none = restore(o);
  EXPECT_EQ(none.restored, 0);
  EXPECT_EQ(none.failed, 1);
  EXPECT_EQ(none.mismatched, 1);
  EXPECT_EQ(none.other_copy, 0);
  EXPECT_FALSE(fs::exists(out() / "a.txt"));
}

// The offload gate counts a copy of the content under another volume at the
// same destination too, so restore looks there as well.
TEST_F(Restore, CopyOfTheContentUnderAnotherVolumeAtTheDestinationIsUsed) {
  auto other = sb.tmp() / "src2";
  write_file(other / "same.txt", originals["a.txt"]);
  sb.set_config(SyncSandbox::config_text(sb.src(), sb.dest_root()) + "\n[volumes.w]\npath = '" + other.string() +
                "'\nsync_to = ['d']\n");
  ASSERT_EQ(engine::run_index(sb.cfg(), sb.st(), "w", index_opts()).status, RunStatus::success);
  engine::sync::SyncOptions first;
  first.init = true;
  ASSERT_EQ(engine::sync::run_mirror_sync(sb.cfg(), sb.st(), "w", "d", first).status, RunStatus::success);
  sb.db().execute("UPDATE remote_paths SET state = 'lost' WHERE name = CAST('a.txt' AS BLOB)");
  fs::remove(sb.vdest() / "a.txt");
  RestoreOptions o;
  o.selectors = {"a.txt"};
  auto rep = restore(o);
  EXPECT_EQ(rep.no_copy, 0);
  EXPECT_EQ(rep.restored, 1);
  EXPECT_EQ(read_bytes(out() / "a.txt"), originals["a.txt"]);
}

// ---- a volume re-pointed without `volumes move` -------------------------------------

TEST_F(Restore, RePointedVolumeIsRefusedWithARefusedRunRow) {
  auto moved = sb.tmp() / "moved";
  copy_tree(sb.src(), moved);  // marker included: only the recorded path disagrees
  sb.set_config(SyncSandbox::config_text(moved, sb.dest_root()));
  for (bool into_volume : {true, false}) {
    SCOPED_TRACE(into_volume ? "into the volume" : "--to");
    auto before = count_runs(sb.db(), "kind = 'restore' AND status = 'refused'");
    RestoreOptions o;
    if (!into_volume) o.to = out().string();
    try {
      engine::run_restore(sb.cfg(), sb.st(), "v", o);
      ADD_FAILURE() << "restore of a re-pointed volume went ahead";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::refused);
      EXPECT_NE(std::string(e.what()).find("volumes move"), std::string::npos) << e.what();
    }
    EXPECT_EQ(count_runs(sb.db(), "kind = 'restore' AND status = 'refused' AND destination = 'd' AND volume_id = " +
                                      std::to_string(sb.vol_id())),
              before + 1);
    EXPECT_FALSE(fs::exists(out()));
  }
  RestoreOptions dry;
  dry.dry_run = true;
  EXPECT_THROW(engine::run_restore(sb.cfg(), sb.st(), "v", dry), Error);
  EXPECT_EQ(count_runs(sb.db(), "kind = 'restore' AND status = 'refused'"), 2) << "a dry run records nothing";
}

// ---- a restore killed mid-file ------------------------------------------------------

// The real binary, run with stdout and stderr going to files.
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
        const std::vector<std::string>& extra_env = {}) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv{SQUIRREL_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "HOME=" + out.parent_path().string()};
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR"})
      if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    auto c_argv = c_strings(argv), c_env = c_strings(env);
    int rc = posix_spawn(&pid_, c_argv[0], &fa, nullptr, c_argv.data(), c_env.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
  }
  ~Child() {
    if (pid_ > 0) kill_and_wait();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool exited() {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = 0;
    return true;
  }
  int wait() {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    return status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  void kill_and_wait() {
    ::kill(pid_, SIGKILL);
    wait();
  }
  int status() const { return status_; }

 private:
  static std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
  }
  pid_t pid_ = 0;
  int status_ = -1;
};

// Names in `dir` that start with the restore temp prefix.
std::vector<std::string> restore_temps(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().starts_with(".squirrel-restore-")) out.push_back(e.path().filename().string());
  return out;
}

class KilledRestore : public Restore {
 protected:
  void SetUp() override {
    Restore::SetUp();
    put("huge64.bin", big_content('k', 64 << 20));
    ASSERT_EQ(sb.index().status, RunStatus::success);
    ASSERT_EQ(sb.sync().status, RunStatus::success);
    write_file(config(), SyncSandbox::config_text(sb.src(), sb.dest_root()));
  }
  fs::path config() const { return sb.tmp() / "config.toml"; }
  std::vector<std::string> restore_args(const std::string& path) const {
    return {"--config", config().string(), "--db", sb.db_path().string(), "restore", "v", path, "--json"};
  }

  // Starts `restore v huge64.bin` into the volume with every read of a
  // destination file hanging for ever past its first 16 MiB
  // (SQUIRREL_TEST_HANG_READS_AFTER), so the child cannot finish the file:
  // it is SIGKILLed once its temp file is there. Returns the temp's name.
  std::string kill_mid_file() {
    fs::remove(sb.src() / "huge64.bin");
    Child child(restore_args("huge64.bin"), sb.tmp() / "killed.out", sb.tmp() / "killed.err",
                {"SQUIRREL_TEST_HANG_READS_AFTER=" + std::to_string(16 << 20)});
    while (restore_temps(sb.src()).empty()) {
      if (child.exited()) {
        ADD_FAILURE() << "the restore ended on its own (status " << child.status() << ")\n"
                      << read_bytes(sb.tmp() / "killed.err");
        return "";
      }
      ::usleep(1000);
    }
    child.kill_and_wait();
    EXPECT_EQ(child.status(), 128 + SIGKILL);
    auto temps = restore_temps(sb.src());
    return temps.empty() ? "" : temps[0];
  }

  // Every user file in the volume is absent or an original, byte for byte.
  std::vector<std::string> partial_user_files() {
    std::vector<std::string> out;
    for (const auto& [rel, node] : tree_of(sb.src())) {
      if (node.type == 'd' || rel.starts_with(".squirrel-")) continue;
      auto it = originals.find(rel);
      if (node.type != 'f' || it == originals.end() || node.hash != blake3(it->second)) out.push_back(rel);
    }
    return out;
  }
};

// A restore killed with SIGKILL mid-file (held there: it cannot finish)
// leaves only its temp file beside the target, never a partial file at the target; the next restore into
// the tree removes that temp (its run is provably over and provably a
// restore), and nothing else that merely looks like one.
TEST_F(KilledRestore, NextRestoreRemovesTheTempFileOfTheKilledRunAndNothingElse) {
  std::string temp = kill_mid_file();
  ASSERT_FALSE(temp.empty());
  EXPECT_FALSE(fs::exists(sb.src() / "huge64.bin")) << "a killed restore left something at the target";
  EXPECT_EQ(partial_user_files(), std::vector<std::string>{});
  EXPECT_LT(fs::file_size(sb.src() / temp), originals["huge64.bin"].size()) << "killed mid-file";

  // Names like a temp that this tree's restores did not create.
  auto sync_run = std::to_string(sync_runs(sb.db()).back().id);
  auto killed_run = temp.substr(18, temp.rfind('-') - 18);
  const std::vector<std::string> decoys = {".squirrel-restore-999999-0123456789abcdef",
                                           ".squirrel-restore-" + sync_run + "-0123456789abcdef",
                                           ".squirrel-restore-" + killed_run + "-0123456789abcdeX",
                                           ".squirrel-restore-" + killed_run + "-0123456789abcde"};
  for (const auto& d : decoys) write_file(sb.src() / d, "not squirrel's");
  const std::string dir_decoy = ".squirrel-restore-" + killed_run + "-fedcba9876543210";
  fs::create_directory(sb.src() / dir_decoy);

  Child again(restore_args("huge64.bin"), sb.tmp() / "again.out", sb.tmp() / "again.err");
  ASSERT_EQ(again.wait(), 0) << read_bytes(sb.tmp() / "again.err");
  auto rep = nlohmann::json::parse(read_bytes(sb.tmp() / "again.out"));
  EXPECT_EQ(rep.value("leftover_temps_removed", -1), 1) << rep.dump(2);
  EXPECT_NE(read_bytes(sb.tmp() / "again.err").find("removed 1 leftover temp file"), std::string::npos)
      << read_bytes(sb.tmp() / "again.err");
  EXPECT_FALSE(fs::exists(sb.src() / temp));
  EXPECT_EQ(read_bytes(sb.src() / "huge64.bin"), originals["huge64.bin"]);
  EXPECT_EQ(partial_user_files(), std::vector<std::string>{});
  for (const auto& d : decoys) EXPECT_EQ(read_bytes(sb.src() / d), "not squirrel's") << d;
  EXPECT_TRUE(fs::is_directory(sb.src() / dir_decoy));
  EXPECT_EQ(count_runs(sb.db(), "kind = 'restore' AND status = 'aborted' AND id = " + killed_run), 1);
  EXPECT_EQ(count_runs(sb.db(), "status = 'running'"), 0);
}

// ---- restore without an index ------------------------------------------------------

TEST_F(Restore, WithoutIndexChecksReceiptsRefusesDamagedAndWarnsUnnamed) {
  // A second push: the latest receipt entry for a.txt must win.
  put("a.txt", "alpha, edited");
  ASSERT_EQ(sb.index().status, RunStatus::success);
  ASSERT_EQ(sb.sync().status, RunStatus::success);
  // Damage one copy at the destination (same size), and add a file no push wrote.
  write_file(sb.vdest() / "dir/small.txt", "SMALL");
  write_file(sb.vdest() / "dir/stranger.txt", "nobody vouches for me");
  forget_index();

  auto rep = restore();
  EXPECT_TRUE(rep.without_index);
  EXPECT_EQ(rep.receipts_read, 2);
  EXPECT_EQ(rep.mismatched, 1);
  EXPECT_EQ(rep.unnamed, 1);
  EXPECT_EQ(rep.status, RunStatus::partial);
  EXPECT_FALSE(fs::exists(out() / "dir/small.txt")) << "a copy that fails its receipt must never reach the target";
  EXPECT_EQ(read_bytes(out() / "a.txt"), "alpha, edited");
  EXPECT_EQ(read_bytes(out() / "dir/stranger.txt"), "nobody vouches for me");
  originals["dir/stranger.txt"] = "nobody vouches for me";
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
  EXPECT_EQ(read_bytes(out() / "big.bin"), originals["big.bin"]);
  EXPECT_EQ(read_bytes(out() / "dir/huge.bin"), originals["dir/huge.bin"]);
  EXPECT_FALSE(fs::exists(out() / ".squirrel-index")) << "reserved entries are not restored";
  EXPECT_FALSE(fs::exists(out() / ".squirrel-volume"));
}

// The damaged copy is refused even when the wrong bytes have another size.
TEST_F(Restore, WithoutIndexRefusesCopyOfOtherSize) {
  write_file(sb.vdest() / "big.bin", "truncated");
  forget_index();
  auto rep = restore();
  EXPECT_EQ(rep.mismatched, 1);
  EXPECT_FALSE(fs::exists(out() / "big.bin"));
  EXPECT_EQ(rep.restored, static_cast<std::int64_t>(originals.size()) - 1);
}

// A fresh machine restoring into the configured (empty) volume directory:
// the files come back, the directory becomes the volume, and a first
// index then sees exactly what was synced.
TEST_F(Restore, WithoutIndexIntoTheVolumeAdoptsItAndIndexAgrees) {
  fs::remove_all(sb.src());
  fs::create_directories(sb.src());
  forget_index();
  RestoreOptions o;
  o.to.clear();
  auto rep = engine::run_restore(sb.cfg(), sb.st(), "v", o);
  EXPECT_EQ(rep.status, RunStatus::success);
  EXPECT_EQ(rep.unnamed, 0);
  EXPECT_EQ(rep.restored, static_cast<std::int64_t>(originals.size()));
  for (const auto& [rel, bytes] : originals) EXPECT_EQ(read_bytes(sb.src() / rel), bytes) << rel;
  ASSERT_EQ(sb.index().status, RunStatus::success);
  std::set<std::string> indexed;
  for (const auto& [path, hash] : present_set(sb.db(), sb.vol_id()))
    if (!path.starts_with(".squirrel-")) indexed.insert(path);
  std::set<std::string> expected;
  for (const auto& [rel, bytes] : originals) expected.insert(rel);
  EXPECT_EQ(indexed, expected);
}

// Without the directory the restore refuses rather than creating it: an
// unmounted disk must not be mistaken for an empty one.
TEST_F(Restore, WithoutIndexIntoMissingVolumeDirectoryRefuses) {
  fs::remove_all(sb.src());
  forget_index();
  try {
    engine::run_restore(sb.cfg(), sb.st(), "v", {});
    ADD_FAILURE() << "restore into a missing volume directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::refused);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(sb.src()));
}

// An unreadable receipt is skipped with a warning; its files are then unnamed.
TEST_F(Restore, WithoutIndexSkipsUnreadableReceipt) {
  for (const auto& e : fs::directory_iterator(sb.vdest() / ".squirrel-index"))
    if (e.path().filename().string().starts_with("run-")) write_file(e.path(), "not json\n");
  forget_index();
  auto rep = restore();
  EXPECT_EQ(rep.receipts_unreadable, 1);
  EXPECT_EQ(rep.unnamed, static_cast<std::int64_t>(originals.size()));
  EXPECT_EQ(not_absent_or_identical(out()), std::vector<std::string>{});
  bool warned = std::any_of(events.begin(), events.end(), [](const engine::RestoreEvent& e) {
    return e.type == engine::RestoreEvent::Type::warning && e.message.find("receipt skipped") != std::string::npos;
  });
  EXPECT_TRUE(warned);
}

// A dry run without an index counts and writes nothing.
TEST_F(Restore, WithoutIndexDryRunWritesNothing) {
  forget_index();
  RestoreOptions o;
  o.dry_run = true;
  auto rep = restore(o);
  EXPECT_EQ(rep.restored, static_cast<std::int64_t>(originals.size()));
  EXPECT_FALSE(fs::exists(out()));
  EXPECT_EQ(count_runs(sb.db(), "kind = 'restore'"), 0);
}

}  // namespace
