#include "engine/index.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/hash_pool.hpp"
#include "engine/volume.hpp"
#include "engine/walk.hpp"
#include "store/files.hpp"

namespace sq::engine {

int default_workers() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(n == 0 ? 2u : n, 1u, 16u));
}

namespace {

using Clock = std::chrono::steady_clock;

class Indexer {
 public:
  Indexer(store::Store& st, const IndexOptions& opts, const IndexListener& listener)
      : db_(st.db()), opts_(opts), listener_(listener) {}

  void run(ResolvedVolume& vol, IndexReport& report);

 private:
  bool writes() const { return opts_.mode == IndexMode::index && !opts_.dry_run; }
  bool hashes(const store::LiveRow* live) const;
  void visit(const std::string& rel, std::vector<std::string>& stack);
  void classify_files(const std::string& rel, const DirListing& listing);
  void handle(HashResult r);
  void drain(bool wait);
  void flush_batch();
  void count_unwalked_missing();
  void emit(IndexEvent::Type t, const std::string& path, const std::string& msg);
  void file_error(const std::string& path, const std::string& msg);

  store::Db& db_;
  IndexOptions opts_;
  IndexListener listener_;
  IndexReport* report_ = nullptr;
  int root_ = -1;
  std::int64_t volume_id_ = 0;  // 0 before the first index
  std::int64_t run_id_ = 0;
  std::unique_ptr<HashPool> pool_;
  std::map<std::string, store::LiveRow> pending_live_;  // path -> live row, for jobs in flight
  std::vector<store::Observation> batch_;
  std::set<std::string> walked_;
  std::int64_t files_done_ = 0;
  Clock::time_point last_progress_ = Clock::now();
};

void Indexer::emit(IndexEvent::Type t, const std::string& path, const std::string& msg) {
  if (listener_) listener_({t, path, msg, files_done_, report_->bytes_hashed});
}

void Indexer::file_error(const std::string& path, const std::string& msg) {
  report_->errors += 1;
  emit(IndexEvent::Type::file_error, path, msg);
}

bool Indexer::hashes(const store::LiveRow* live) const {
  bool trusted = live && live->status == "present";
  if (opts_.mode == IndexMode::audit) return false;
  if (opts_.mode == IndexMode::index && opts_.shallow && trusted) return false;
  return true;
}

void Indexer::run(ResolvedVolume& vol, IndexReport& report) {
  report_ = &report;
  root_ = vol.root.get();
  volume_id_ = vol.row ? vol.row->id : 0;
  run_id_ = report.run_id;
  int workers = opts_.workers > 0 ? opts_.workers : default_workers();
  pool_ = std::make_unique<HashPool>(vol.root.get(), workers, std::max<std::size_t>(64, 64 * workers));
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    visit(rel, stack);
  }
  while (!pool_->idle()) drain(true);
  flush_batch();
  pool_.reset();
  if (writes()) {
    if (report.errors == 0) report.missing = store::mark_missing(db_, volume_id_, run_id_);
  } else {
    count_unwalked_missing();
  }
  emit(IndexEvent::Type::progress, "", "done");
}

void Indexer::visit(const std::string& rel, std::vector<std::string>& stack) {
  walked_.insert(rel);
  DirListing listing = list_directory(root_, rel);
  if (!listing.error.empty()) {
    file_error(rel.empty() ? "." : rel, "cannot read directory: " + listing.error);
    return;
  }
  for (const auto& [name, msg] : listing.errors) file_error(join_rel(rel, name), msg);
  classify_files(rel, listing);
  for (auto it = listing.entries.rbegin(); it != listing.entries.rend(); ++it) {
    if (it->type != DirEntry::Type::directory) continue;
    std::string child = join_rel(rel, it->name);
    if (rel.empty() && it->name == ".squirrel-history")
      emit(IndexEvent::Type::warning, child,
           "a .squirrel-history folder is inside the volume; it is indexed like any other folder but never synced");
    stack.push_back(std::move(child));
  }
}

void Indexer::classify_files(const std::string& rel, const DirListing& listing) {
  std::map<std::string, store::LiveRow> live;
  if (volume_id_)
    for (auto& row : store::live_rows_in_folder(db_, volume_id_, rel)) live.emplace(row.name, std::move(row));
  std::set<std::string> seen;
  for (const auto& e : listing.entries) {
    if (e.type == DirEntry::Type::special) {
      report_->skipped_special += 1;
      continue;
    }
    if (e.type != DirEntry::Type::file || (rel.empty() && e.name == kMarkerName)) continue;
    seen.insert(e.name);
    auto it = live.find(e.name);
    const store::LiveRow* lr = it == live.end() ? nullptr : &it->second;
    std::string path = join_rel(rel, e.name);
    bool same_stat = lr && lr->status == "present" && lr->size == e.stat.size && lr->mtime_ns == e.stat.mtime_ns;
    HashJob job{0, path, hashes(lr) && !(opts_.mode == IndexMode::index && opts_.shallow && same_stat), e.stat};
    if (opts_.mode == IndexMode::index && opts_.shallow && lr && !same_stat) job.needs_hash = true;
    if (lr) pending_live_.emplace(path, *lr);
    while (!pool_->can_submit()) drain(true);
    pool_->submit(std::move(job));
    drain(false);
  }
  if (writes()) return;
  for (const auto& [name, row] : live)
    if (row.status == "present" && !seen.count(name)) {
      report_->missing += 1;
      if (opts_.mode != IndexMode::index) emit(IndexEvent::Type::finding, join_rel(rel, name), "missing");
    }
}

void Indexer::drain(bool wait) {
  while (auto r = pool_->next_ready(wait)) {
    handle(std::move(*r));
    wait = false;
  }
}

void Indexer::handle(HashResult r) {
  const std::string& path = r.job.path;
  std::optional<store::LiveRow> lr;
  if (auto it = pending_live_.find(path); it != pending_live_.end()) {
    lr = std::move(it->second);
    pending_live_.erase(it);
  }
  files_done_ += 1;
  if (!r.ok) return file_error(path, r.error);
  if (r.changed_while_hashed)
    return file_error(path, "changed while it was being hashed; not recorded — re-run the index when it is quiet");
  if (r.job.needs_hash) report_->bytes_hashed += r.stat.size;
  bool present = lr && lr->status == "present";
  bool unchanged = r.job.needs_hash ? (present && lr->hash == r.hash)
                                    : (present && lr->size == r.stat.size && lr->mtime_ns == r.stat.mtime_ns);
  if (!writes()) {
    if (unchanged) report_->unchanged += 1;
    else if (lr) report_->modified += 1;
    else report_->added += 1;
    if (!unchanged && opts_.mode != IndexMode::index)
      emit(IndexEvent::Type::finding, path, lr ? "modified" : "added");
  } else {
    store::Observation o{path, r.hash, r.stat.size, r.stat.mtime_ns, r.stat.inode, !r.job.needs_hash};
    batch_.push_back(std::move(o));
    if (batch_.size() >= opts_.batch_size) flush_batch();
  }
  auto now = Clock::now();
  if (now - last_progress_ > std::chrono::milliseconds(100)) {
    last_progress_ = now;
    emit(IndexEvent::Type::progress, path, "");
  }
}

void Indexer::flush_batch() {
  if (batch_.empty() || !writes()) return;
  auto counts = store::apply_index_batch(db_, volume_id_, run_id_, batch_);
  report_->added += counts.added;
  report_->modified += counts.modified;
  report_->unchanged += counts.unchanged;
  batch_.clear();
}

// Folders the index knows but the walk never reached are gone entirely.
void Indexer::count_unwalked_missing() {
  if (!volume_id_) return;
  store::Stmt st(db_,
                 "SELECT d.path, count(*) FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.volume_id = ? AND "
                 "f.status = 'present' GROUP BY d.id");
  st.bind(1, volume_id_);
  while (st.step()) {
    auto b = st.blob(0);
    std::string path(b.begin(), b.end());
    if (walked_.count(path)) continue;
    report_->missing += st.i64(1);
    if (opts_.mode != IndexMode::index) emit(IndexEvent::Type::finding, path, fmt::format("{} missing", st.i64(1)));
  }
}

store::RunKind kind_of(const IndexOptions& o) {
  return o.mode == IndexMode::index ? store::RunKind::index : store::RunKind::audit;
}

// Preflight refusals leave a run row so they show up in the audit trail.
void record_refusal(store::Db& db, const IndexOptions& opts, std::optional<std::int64_t> volume_id, const Error& e) {
  if (opts.dry_run || e.kind() != ErrorKind::refused) return;
  store::record_terminal_run(db, {kind_of(opts), volume_id, ""}, store::RunStatus::refused, e.what());
}

ResolvedVolume resolve_or_refuse(const config::Config& cfg, store::Db& db, const std::string& name,
                                 const IndexOptions& opts) {
  auto mode = opts.mode == IndexMode::index ? ResolveMode::first_index : ResolveMode::existing;
  try {
    return resolve_volume(cfg, db, name, mode);
  } catch (const Error& e) {
    auto row = store::find_volume(db, name);
    record_refusal(db, opts, row ? std::optional(row->id) : std::nullopt, e);
    throw;
  }
}

void begin_gated(store::Db& db, const IndexOptions& opts, ResolvedVolume& vol, IndexReport& report) {
  if (opts.dry_run) return;
  if (opts.mode == IndexMode::index) adopt_volume(db, vol);
  store::BeginOptions bo;
  bo.shallow = opts.mode == IndexMode::audit || opts.shallow;
  auto begun = store::begin_run(db, {kind_of(opts), vol.row->id, ""}, bo);
  if (!begun.began())
    throw Error(ErrorKind::conflict, fmt::format("already running (run={}, {}, started {})", begun.blocker->id,
                                                 store::to_string(begun.blocker->kind),
                                                 rfc3339_utc(begun.blocker->started_at_ns)));
  report.run_id = begun.run_id;
}

void finish(store::Db& db, IndexReport& r) {
  if (!r.run_id) return;
  r.status = r.errors ? store::RunStatus::partial : store::RunStatus::success;
  std::string err = r.errors ? fmt::format("{} file error(s)", r.errors) : "";
  store::finish_run(db, r.run_id, {r.status, err, r.added + r.modified + r.unchanged, r.added + r.modified + r.missing});
}

}  // namespace

IndexReport run_index(const config::Config& cfg, store::Store& st, const std::string& volume, const IndexOptions& opts,
                      const IndexListener& listener) {
  auto& db = st.db();
  IndexReport report;
  report.volume = volume;
  report.dry_run = opts.dry_run;
  auto vol = resolve_or_refuse(cfg, db, volume, opts);
  report.first_index = !vol.row.has_value();
  begin_gated(db, opts, vol, report);
  try {
    Indexer(st, opts, listener).run(vol, report);
  } catch (const std::exception& e) {
    if (report.run_id) {
      report.status = store::RunStatus::failed;
      store::finish_run(db, report.run_id, {store::RunStatus::failed, e.what(), 0, std::nullopt});
    }
    throw;
  }
  finish(db, report);
  return report;
}

}  // namespace sq::engine
