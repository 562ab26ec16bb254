// Model-based property test of the index: random sequences of changes to a
// small tree (write, delete, revert, folder create/delete, folder<->file
// swaps, offload) interleaved with full, shallow and dry-run indexes. After
// every index the database must equal a simple model: the live set, the
// counts, one live row per path, the retained history and a consistent
// folder tree.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <set>

#include "index_util.hpp"
#include "store/runs.hpp"

using namespace sq;
namespace fs = std::filesystem;

namespace {

enum Kind { kWrite, kDelete, kRevert, kMakeDir, kRemoveDir, kIndex, kShallow, kDryRun, kOffload, kRestore, kKinds };

struct Op {
  int kind = kIndex;
  int slot = 0;
  int content = 0;
};

const char* const kKindNames[] = {"write",   "delete",  "revert",  "mkdir",   "rmdir",
                                  "index",   "shallow", "dry-run", "offload", "restore"};
// "d1" is both a file slot and a folder, so writes swap a folder for a file and back.
const std::vector<std::string> kSlots = {"a", "d0/a", "d0/b", "d0/e/f", "d1/c", "d1"};
const std::vector<std::string> kDirs = {"d0", "d1", "d0/e"};
const std::vector<std::string> kContents = {"", "alpha", "beta", "gamma gamma", "delta"};

void showValue(const Op& op, std::ostream& os) {
  os << kKindNames[op.kind] << "(" << kSlots[static_cast<std::size_t>(op.slot)] << ", " << op.content << ")";
}

struct Counts {
  std::int64_t added = 0, modified = 0, unchanged = 0, missing = 0;
  bool operator==(const Counts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << "added=" << c.added << " modified=" << c.modified << " unchanged=" << c.unchanged
            << " missing=" << c.missing;
}

struct Live {
  int content = 0;
  std::string status;
  std::int64_t mtime = 0;
};

struct OnDisk {
  int content = 0;
  std::int64_t mtime = 0;
};

// What the database should hold, and what the disk holds.
struct Model {
  std::map<std::string, OnDisk> disk;              // path -> content, mtime
  std::map<std::string, Live> live;                // path -> live row
  std::map<std::string, std::set<int>> rows;       // path -> contents with a row
  std::map<std::string, std::vector<int>> written; // path -> contents ever written

  void erase_under(const std::string& dir) {
    for (auto it = disk.begin(); it != disk.end();)
      it = it->first == dir || it->first.rfind(dir + "/", 0) == 0 ? disk.erase(it) : std::next(it);
  }

  // Applies an index to the model (or only predicts it: `apply` false).
  Counts index(bool apply) {
    Counts c;
    auto next = live;
    for (const auto& [path, file] : disk) {
      auto it = next.find(path);
      if (it == next.end()) c.added++;
      else if (it->second.content == file.content && it->second.status == "present") c.unchanged++;
      else c.modified++;
      next[path] = {file.content, "present", file.mtime};
      if (apply) rows[path].insert(file.content);
    }
    for (auto& [path, row] : next)
      if (!disk.count(path) && row.status == "present") {
        c.missing++;
        row.status = "missing";
      }
    if (apply) live = next;
    return c;
  }
};

fs::path made_dir(const fs::path& p) {
  fs::create_directories(p);
  return p;
}

// One database for every case: opening (and migrating) a fresh one costs
// more than a whole case. Each case gets a volume and a tree of its own, so
// the cases also show that volumes never leak into each other.
struct Shared {
  test::TempDir dir;
  store::Store store = test::open_store(dir);
  int cases = 0;
  Shared() { store.db().exec("PRAGMA synchronous=OFF"); }  // speed only: no crash is simulated here
};

Shared& shared() {
  static Shared s;
  return s;
}

class World {
 public:
  World()
      : name_("v" + std::to_string(++shared().cases)),
        root_(made_dir(shared().dir / name_)),
        cfg_(test::volume_config(root_, name_)) {}
  ~World() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  void apply(const Op& op);

 private:
  void write(const std::string& path, int content, std::int64_t mtime = 0);
  void restore(const std::string& path);
  bool offloadable(const std::string& path);
  bool restorable(const std::string& path);
  void offload(const std::string& path);
  void run_index(const engine::IndexOptions& o);
  void check(const Counts& expected, const engine::IndexReport& r);
  void check_history(std::int64_t vol);

  std::string name_;
  fs::path root_;
  config::Config cfg_;
  store::Store& store_ = shared().store;
  Model model_;
  std::int64_t mtime_ = 1'600'000'000'000'000'000;
};

// Writes fresh bytes with an mtime of their own (or the given one).
void World::write(const std::string& path, int content, std::int64_t mtime) {
  auto parent = fs::path(path).parent_path().string();
  if (!parent.empty() && fs::is_regular_file(fs::symlink_status(root_ / parent))) {
    fs::remove(root_ / parent);
    model_.disk.erase(parent);
  }
  if (fs::is_directory(fs::symlink_status(root_ / path))) {
    fs::remove_all(root_ / path);
    model_.erase_under(path);
  }
  test::write_file(root_ / path, kContents[static_cast<std::size_t>(content)]);
  mtime_ += 1'000'000'000;  // every write gets its own mtime, so shallow sees every change
  if (mtime == 0) mtime = mtime_;
  test::set_mtime_ns(root_ / path, mtime);
  model_.disk[path] = {content, mtime};
  model_.written[path].push_back(content);
}

// The first slot from `slot` on (cyclically) that `fits`, or "".
template <typename Pred>
std::string pick(int slot, Pred fits) {
  for (std::size_t i = 0; i < kSlots.size(); ++i) {
    const auto& path = kSlots[(static_cast<std::size_t>(slot) + i) % kSlots.size()];
    if (fits(path)) return path;
  }
  return "";
}

// Only a present row whose bytes are still on disk is offloaded.
bool World::offloadable(const std::string& path) {
  auto it = model_.live.find(path);
  auto on_disk = model_.disk.find(path);
  return it != model_.live.end() && it->second.status == "present" && on_disk != model_.disk.end() &&
         on_disk->second.content == it->second.content;
}

void World::offload(const std::string& path) {
  if (path.empty()) return;
  auto it = model_.live.find(path);
  auto& db = store_.db();
  auto vol = test::volume_id(db, name_);
  auto row = store::live_row_by_path(db, vol, path);
  RC_ASSERT(row.has_value());
  auto run = store::begin_run(db, {store::RunKind::offload, vol, ""});
  RC_ASSERT(run.began());
  store::mark_offloaded(db, vol, path, row->content_id, run.run_id);
  store::finish_run(db, run.run_id, {store::RunStatus::success, "", 1, std::nullopt});
  fs::remove(root_ / path);
  model_.disk.erase(path);
  it->second.status = "offloaded";
}

// Puts back the bytes of a missing or offloaded row with the row's own
// mtime, as a restore or a move back would: shallow mode must not trust it.
bool World::restorable(const std::string& path) {
  auto it = model_.live.find(path);
  if (it == model_.live.end() || it->second.status == "present" || model_.disk.count(path)) return false;
  auto parent = fs::path(path).parent_path().string();
  return !fs::is_directory(fs::symlink_status(root_ / path)) &&
         (parent.empty() || !fs::is_regular_file(fs::symlink_status(root_ / parent)));  // the place is free
}

void World::restore(const std::string& path) {
  if (path.empty()) return;
  const auto& row = model_.live.at(path);
  write(path, row.content, row.mtime);
}

void World::apply(const Op& op) {
  const auto& path = kSlots[static_cast<std::size_t>(op.slot)];
  const auto& folder = kDirs[static_cast<std::size_t>(op.slot) % kDirs.size()];
  switch (op.kind) {
    case kWrite: return write(path, op.content);
    case kDelete:
      if (fs::is_regular_file(fs::symlink_status(root_ / path))) fs::remove(root_ / path);
      model_.disk.erase(path);
      return;
    case kRevert: {
      const auto& past = model_.written[path];
      if (!past.empty()) write(path, past[static_cast<std::size_t>(op.content) % past.size()]);
      return;
    }
    case kMakeDir:  // an empty folder: nothing to index
      if (!fs::exists(fs::symlink_status(root_ / folder))) fs::create_directories(root_ / folder);
      return;
    case kRemoveDir:
      if (fs::is_directory(fs::symlink_status(root_ / folder))) {
        fs::remove_all(root_ / folder);
        model_.erase_under(folder);
      }
      return;
    case kIndex: return run_index(test::index_opts());
    case kShallow: return run_index(test::index_opts(true));
    case kDryRun: return run_index(test::index_opts(false, true));
    case kOffload: return offload(pick(op.slot, [&](const std::string& p) { return offloadable(p); }));
    case kRestore: return restore(pick(op.slot, [&](const std::string& p) { return restorable(p); }));
  }
}

void World::run_index(const engine::IndexOptions& o) {
  auto before = test::dump_index_tables(store_.db());
  auto expected = model_.index(!o.dry_run);
  auto r = engine::run_index(cfg_, store_, name_, o);
  if (o.dry_run) RC_ASSERT(test::dump_index_tables(store_.db()) == before);
  check(expected, r);
}

void World::check(const Counts& expected, const engine::IndexReport& r) {
  RC_ASSERT(r.errors == 0);
  RC_ASSERT((Counts{r.added, r.modified, r.unchanged, r.missing}) == expected);
  if (r.dry_run && !store::find_volume(store_.db(), name_)) return;
  auto& db = store_.db();
  auto vol = test::volume_id(db, name_);
  test::LiveSet want;
  for (const auto& [path, row] : model_.live)
    want[path] = {blake3(kContents[static_cast<std::size_t>(row.content)]), row.status};
  RC_ASSERT(test::live_set(db, vol) == want);
  RC_ASSERT(test::max_live_rows_per_path(db) <= 1);
  RC_ASSERT(db.query_rows("PRAGMA foreign_key_check").empty());
  auto problems = test::folder_problems(db, vol);
  for (const auto& p : problems) RC_LOG() << p << "\n";
  RC_ASSERT(problems.empty());
  check_history(vol);
  if (r.run_id) {
    auto run = store::get_run(db, r.run_id);
    RC_ASSERT(run->file_count == r.added + r.modified + r.unchanged);
    RC_ASSERT(run->changed_count == r.added + r.modified + r.missing);
  }
}

// Every content a path ever had is still a row of that path, exactly once.
void World::check_history(std::int64_t vol) {
  for (const auto& [path, contents] : model_.rows) {
    auto hist = store::history_by_path(store_.db(), vol, path);
    std::multiset<Digest> got, want;
    for (const auto& h : hist) got.insert(h.hash);
    for (int c : contents) want.insert(blake3(kContents[static_cast<std::size_t>(c)]));
    RC_ASSERT(got == want);
  }
}

// Weighted towards few paths and towards indexes, so that a path's history
// (write, index, delete or offload, index, restore, shallow index ...)
// often builds up within one case.
rc::Gen<Op> gen_op() {
  auto kind = rc::gen::weightedElement<int>({{4, kWrite}, {2, kDelete}, {1, kRevert}, {1, kMakeDir}, {1, kRemoveDir},
                                             {3, kIndex}, {3, kShallow}, {1, kDryRun}, {2, kOffload},
                                             {3, kRestore}});
  auto slot = rc::gen::weightedElement<int>({{4, 0}, {3, 1}, {2, 2}, {1, 3}, {1, 4}, {2, 5}});
  return rc::gen::map(rc::gen::tuple(kind, slot, rc::gen::inRange(0, static_cast<int>(kContents.size()))),
                      [](const std::tuple<int, int, int>& t) { return Op{std::get<0>(t), std::get<1>(t), std::get<2>(t)}; });
}

}  // namespace

RC_GTEST_PROP(IndexModel, TheDatabaseFollowsTheModelThroughRandomHistories, ()) {
  const auto length = *rc::gen::inRange(1, 40);
  auto ops = *rc::gen::container<std::vector<Op>>(static_cast<std::size_t>(length), gen_op());
  ops.push_back(Op{kIndex, 0, 0});
  World world;
  for (const auto& op : ops) world.apply(op);
}
