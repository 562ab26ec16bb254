#pragma once
// Helpers shared by the sync tests: a sandbox with one volume and one local
// mirror destination, a transport wrapper that records every call (and
// keeps the fault transport reachable after the push released it), tree
// views of the destination that never follow symlinks, and the ledger /
// evidence invariants the spec states for every crash point.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "core/fsinfo.hpp"
#include "core/hash.hpp"
#include "engine/dest/transport.hpp"
#include "engine/index.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/volume.hpp"
#include "index_util.hpp"
#include "store/evidence.hpp"
#include "store/remote_paths.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"
#include "test_util.hpp"

namespace sq::test {

namespace fs = std::filesystem;

// ---- a transport that records its calls ------------------------------------

struct Call {
  std::string op, a, b;
};

// Forwards to a shared inner transport and appends every call to a shared
// log, so a test can inspect both after the push destroyed its transport.
class Recording final : public dest::ForwardingTransport {
 public:
  Recording(std::shared_ptr<dest::Transport> inner, std::shared_ptr<std::vector<Call>> log)
      : ForwardingTransport(std::move(inner)), log_(std::move(log)) {}
  dest::Stat stat(const std::string& n) override { return note("stat", n), ForwardingTransport::stat(n); }
  std::vector<dest::Entry> list(const std::string& d) override {
    return note("list", d), ForwardingTransport::list(d);
  }
  dest::PutResult put(const std::string& n, const dest::ReadFn& r, std::int64_t m) override {
    return note("put", n), ForwardingTransport::put(n, r, m);
  }
  std::unique_ptr<dest::Reader> get(const std::string& n) override {
    return note("get", n), ForwardingTransport::get(n);
  }
  dest::ReadBack read_back(const std::string& n) override {
    return note("read_back", n), ForwardingTransport::read_back(n);
  }
  // Each name of a read_back_many is logged as a read_back of its own.
  std::vector<dest::ReadBack> read_back_many(const std::vector<std::string>& names) override {
    for (const auto& n : names) note("read_back", n);
    return ForwardingTransport::read_back_many(names);
  }
  void rename(const std::string& a, const std::string& b) override {
    note("rename", a, b);
    ForwardingTransport::rename(a, b);
  }
  void remove(const std::string& n) override {
    note("remove", n);
    ForwardingTransport::remove(n);
  }
  void mkdirs(const std::string& d) override {
    note("mkdirs", d);
    ForwardingTransport::mkdirs(d);
  }
  void flush() override {
    note("flush", "");
    ForwardingTransport::flush();
  }

 private:
  // A push calls the transport from several threads at once.
  void note(const char* op, const std::string& a, const std::string& b = "") {
    static std::mutex mu;
    std::lock_guard lock(mu);
    log_->push_back({op, a, b});
  }
  std::shared_ptr<std::vector<Call>> log_;
};

// A factory that wraps the local transport in a FaultTransport with `plan`
// and records every call; `fault` and `log` stay valid after the push.
struct Injected {
  std::shared_ptr<dest::FaultTransport> fault;
  std::shared_ptr<std::vector<Call>> log = std::make_shared<std::vector<Call>>();
  // What the faults wrap: the local transport, or the same root reached
  // another way (an SFTP server on loopback).
  engine::sync::TransportFactory open = [](const std::string& root) { return dest::open_local_transport(root); };

  engine::sync::TransportFactory factory(dest::FaultPlan plan = {}) {
    return [this, plan](const std::string& root) -> std::unique_ptr<dest::Transport> {
      fault = std::make_shared<dest::FaultTransport>(open(root), plan);
      return std::make_unique<Recording>(fault, log);
    };
  }
  int calls() const { return fault ? fault->calls() : 0; }
  std::int64_t count(const std::string& op) const {
    std::int64_t n = 0;
    for (const auto& c : *log) n += c.op == op;
    return n;
  }
};

// ---- the sandbox -----------------------------------------------------------

// A temporary directory under `base` that removes itself.
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& base) {
    std::string tmpl = (base / "squirrel-sync-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + base.string());
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

// Where the fault loops run: a memory filesystem when there is one, since
// every push flushes (fsync) many times and the loops run hundreds of
// pushes; the behaviour under test does not depend on the filesystem.
inline fs::path fast_scratch_base() {
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return fs::temp_directory_path();
}

// A volume "v" at <tmp>/src and a local mirror destination "d" at
// <tmp>/dest, the DB and the local backups under <tmp>/state.
class SyncSandbox {
 public:
  explicit SyncSandbox(const std::string& extra_toml = "", const fs::path& base = fs::temp_directory_path())
      : tmp_(base), on_memory_fs_(is_volatile_fs(base)) {
    fs::create_directories(src());
    fs::create_directories(state());
    cfg_ = config::parse(config_text(src(), dest_root()) + extra_toml, tmp_ / "config.toml");
    open();
  }

  static std::string config_text(const fs::path& vol, const fs::path& root, const std::string& backups = "") {
    return "[volumes.v]\npath = '" + vol.string() + "'\nsync_to = ['d']\n\n[destinations.d]\ntype = 'local'\nroot = '" +
           root.string() + "'\n\n[backups]\ndir = '" +
           (backups.empty() ? (root.parent_path() / "state" / "backups").string() : backups) + "'\n";
  }

  fs::path src() const { return tmp_ / "src"; }
  fs::path dest_root() const { return tmp_ / "dest"; }
  fs::path vdest() const { return dest_root() / "v"; }
  fs::path state() const { return tmp_ / "state"; }
  fs::path db_path() const { return state() / "index.db"; }
  const fs::path& tmp() const { return tmp_.path(); }
  config::Config& cfg() { return cfg_; }
  void set_config(const std::string& toml) { cfg_ = config::parse(toml, tmp_ / "config.toml"); }

  store::Store& st() { return *st_; }
  store::Db& db() { return st_->db(); }
  void open() {
    store::StoreOptions o;
    o.node_name = "testnode";
    st_.emplace(store::Store::open(db_path(), o));
  }
  // SQLite files may be copied only while no connection is open.
  void close() { st_.reset(); }

  void write(const std::string& rel, const std::string& content, std::int64_t mtime = 0) {
    write_file(src() / rel, content);
    set_mtime_ns(src() / rel, mtime ? mtime : next_mtime());
  }
  void remove(const std::string& rel) { fs::remove_all(src() / rel); }

  engine::IndexReport index() { return engine::run_index(cfg_, *st_, "v", index_opts()); }

  engine::sync::SyncReport sync(engine::sync::SyncOptions o = {}, const std::string& dest = "d") {
    if (!o.fs_probe && on_memory_fs_) o.fs_probe = disk_stand_in;
    return engine::sync::run_mirror_sync(cfg_, *st_, "v", dest, o, [this](const engine::sync::SyncEvent& e) {
      events.push_back(e);
    });
  }
  engine::sync::SyncReport sync_init(const std::string& dest = "d") {
    engine::sync::SyncOptions o;
    o.init = true;
    return sync(o, dest);
  }

  std::int64_t vol_id() { return volume_id(db(), "v"); }
  std::vector<engine::sync::SyncEvent> events;

 private:
  std::int64_t next_mtime() { return 1'700'000'000'000'000'000LL + 1'000'000'007LL * ++mtime_seq_; }
  // The fault loops use a memory filesystem only for speed; for what they
  // test it stands in for a disk, so the push records what it would there.
  static FsInfo disk_stand_in(const fs::path& p) {
    FsInfo info = fs_info(p);
    info.is_volatile = false;
    info.type = "disk (stand-in for " + info.type + ")";
    return info;
  }
  ScratchDir tmp_;
  bool on_memory_fs_ = false;
  config::Config cfg_;
  std::optional<store::Store> st_;
  std::int64_t mtime_seq_ = 0;
};

// ---- views of a tree that never follow symlinks ------------------------------

struct Node {
  char type = '?';  // f file, d directory, l symlink, o other
  Digest hash{};    // files: BLAKE3 of the bytes
  std::string link; // symlinks: the target
  std::int64_t mtime = 0;
  bool operator==(const Node& o) const { return type == o.type && hash == o.hash && link == o.link; }
};
inline void PrintTo(const Node& n, std::ostream* os) {
  *os << n.type;
  if (n.type == 'f') *os << ":" << to_hex(n.hash).substr(0, 12);
  if (n.type == 'l') *os << "->" << n.link;
}
using Tree = std::map<std::string, Node>;

inline Tree tree_of(const fs::path& root) {
  Tree out;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(root, ec))) return out;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    auto rel = fs::relative(it->path(), root).string();
    Node n;
    auto s = it->symlink_status();
    if (fs::is_symlink(s)) {
      n.type = 'l';
      n.link = fs::read_symlink(it->path()).string();
    } else if (fs::is_directory(s)) {
      n.type = 'd';
    } else if (fs::is_regular_file(s)) {
      n.type = 'f';
      n.hash = blake3(read_bytes(it->path()));
      n.mtime = mtime_ns(it->path());
    } else {
      n.type = 'o';
    }
    out[rel] = n;
  }
  return out;
}

// Only the regular files.
inline std::map<std::string, Digest> files_of(const Tree& t) {
  std::map<std::string, Digest> out;
  for (const auto& [p, n] : t)
    if (n.type == 'f') out[p] = n.hash;
  return out;
}

inline bool starts_with_dir(const std::string& path, const std::string& dir) {
  return path == dir || path.starts_with(dir + "/");
}

// Copies a tree exactly: files with their mtimes, symlinks as symlinks.
inline void copy_tree(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  if (!fs::exists(fs::symlink_status(from))) return;
  fs::create_directories(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    auto target = to / fs::relative(it->path(), from);
    auto s = it->symlink_status();
    if (fs::is_symlink(s)) {
      fs::copy_symlink(it->path(), target);
    } else if (fs::is_directory(s)) {
      fs::create_directories(target);
    } else {
      fs::copy_file(it->path(), target);
      set_mtime_ns(target, mtime_ns(it->path()));
    }
  }
}

// ---- reading the records ----------------------------------------------------

inline std::string history_path(const store::LedgerRow& r) {
  return ".squirrel-history/run-" + std::to_string(r.displaced_run.value_or(0)) + "/" + r.path;
}

// Invariant 1: every live row's bytes at its path and every displaced row's
// bytes at its history path, as a regular file with the recorded hash and
// size. Returns what is wrong (empty: holds).
inline std::vector<std::string> ledger_problems(store::Db& db, std::int64_t vol, const fs::path& vdest,
                                                const std::string& dest = "d") {
  std::vector<std::string> out;
  for (const auto& r : store::ledger_rows(db, dest, vol, {"live", "displaced"})) {
    auto rel = r.state == "live" ? r.path : history_path(r);
    auto p = vdest / rel;
    std::error_code ec;
    auto s = fs::symlink_status(p, ec);
    if (!fs::is_regular_file(s)) {
      out.push_back(r.state + " row " + std::to_string(r.id) + " (" + r.path + "): nothing regular at " + rel);
      continue;
    }
    auto bytes = read_bytes(p);
    if (blake3(bytes) != r.hash || static_cast<std::int64_t>(bytes.size()) != r.size)
      out.push_back(r.state + " row " + std::to_string(r.id) + " (" + r.path + "): other bytes at " + rel);
  }
  return out;
}

// At most one committing/live row per path (the unique index says so; this
// reads it back independently).
inline std::int64_t max_live_ledger_rows_per_path(store::Db& db) {
  return db
      .query_i64("SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM remote_paths WHERE state IN "
                 "('committing','live') GROUP BY destination, folder_id, name)")
      .value_or(-1);
}

// Invariant 3: every present index path is live at the destination with its
// current content, and the bytes there are that content.
inline std::vector<std::string> present_not_live(store::Db& db, std::int64_t vol, const fs::path& vdest,
                                                 const std::string& dest = "d") {
  std::map<std::string, Digest> live;
  for (const auto& r : store::ledger_rows(db, dest, vol, {"live"})) live[r.path] = r.hash;
  std::vector<std::string> out;
  for (const auto& [path, hash] : present_set(db, vol)) {
    if (path.starts_with(".squirrel-")) continue;  // reserved at the volume root: never synced
    auto it = live.find(path);
    if (it == live.end() || it->second != hash) {
      out.push_back(path + ": no live row with its current content");
      continue;
    }
    std::error_code ec;
    if (!fs::is_regular_file(fs::symlink_status(vdest / path, ec)) || blake3(read_bytes(vdest / path)) != hash)
      out.push_back(path + ": the destination does not hold its current content");
  }
  return out;
}

struct VectorRow {
  std::int64_t node = 0, run = 0, updated = 0;
  std::optional<std::string> method;
  std::optional<std::int64_t> source, verified_at;
  bool operator==(const VectorRow&) const = default;
};
inline std::vector<VectorRow> vector_rows(store::Db& db, std::int64_t vol, const std::string& dest = "d") {
  std::vector<VectorRow> out;
  for (const auto& c : store::vector_of(db, vol, dest))
    out.push_back({c.origin_node_id, c.origin_run_id, c.updated_at_ns,
                   c.method ? std::optional(std::string(store::to_string(*c.method))) : std::nullopt,
                   c.source_node_id, c.verified_at_ns});
  return out;
}

inline std::vector<store::RunRow> sync_runs(store::Db& db) {
  std::vector<store::RunRow> out;
  auto ids = db.query_rows("SELECT id FROM runs WHERE kind = 'sync' ORDER BY id");
  for (const auto& r : ids) out.push_back(*store::get_run(db, std::get<std::int64_t>(r[0])));
  return out;
}

inline std::int64_t count_runs(store::Db& db, const std::string& where = "1") {
  return db.query_i64("SELECT count(*) FROM runs WHERE " + where).value_or(-1);
}

inline std::map<std::string, std::string> ledger_states(store::Db& db, std::int64_t vol,
                                                        const std::string& dest = "d") {
  std::map<std::string, std::string> out;  // path -> states joined in id order
  for (const auto& r : store::ledger_rows(db, dest, vol)) {
    auto& s = out[r.path];
    s += (s.empty() ? "" : ",") + r.state;
  }
  return out;
}

// ---- the first-push fault sweep --------------------------------------------

// What a sweep step hands its checks: the retry's report and every call
// the retry made.
struct SweepRetry {
  engine::sync::SyncReport report;
  std::vector<Call> calls;
};

// A first push (--init, one path in flight, so call k is the same call in
// every run) crashed and then power-cut at each of its transport calls,
// each time from the same saved state. `after_fault` runs once the crashed
// process is gone (the store reopened) and returns what it wants the retry
// checked against; `after_retry` judges the retry that follows. The sweep
// stops at the first step with a failure.
template <class AfterFault, class AfterRetry>
void sweep_first_push(SyncSandbox& sb, AfterFault after_fault, AfterRetry after_retry) {
  sb.close();
  copy_tree(sb.state(), sb.tmp() / "state-saved");
  sb.open();
  int n = 0;
  {
    Injected inj;
    engine::sync::SyncOptions o;
    o.init = true;
    o.in_flight = 1;
    o.transport = inj.factory();
    ASSERT_EQ(sb.sync(o).status, store::RunStatus::success);
    n = inj.calls();
  }
  ASSERT_GT(n, 10);
  for (int k = 1; k <= 2 * n; ++k) {
    int at = k <= n ? k : k - n;
    SCOPED_TRACE((k <= n ? "crash at call " : "power cut at call ") + std::to_string(at));
    sb.close();
    fs::remove_all(sb.dest_root());
    copy_tree(sb.tmp() / "state-saved", sb.state());
    sb.open();
    Injected inj;
    engine::sync::SyncOptions o;
    o.init = true;
    o.in_flight = 1;
    dest::FaultPlan plan;
    plan.kind = k <= n ? dest::FaultPlan::Kind::crash : dest::FaultPlan::Kind::power_cut;
    plan.at_call = at;
    o.transport = inj.factory(plan);
    EXPECT_THROW(sb.sync(o), dest::SimulatedCrash);
    sb.close();
    sb.open();
    auto expected = after_fault();
    Injected retry_log;
    engine::sync::SyncOptions retry;
    retry.init = true;
    retry.transport = retry_log.factory();
    auto r = sb.sync(retry);
    EXPECT_EQ(r.status, store::RunStatus::success) << r.error;
    after_retry(expected, SweepRetry{r, *retry_log.log});
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace sq::test
