#include "engine/index.hpp"

#include <fmt/format.h>

#include <climits>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "core/reserved.hpp"
#include "core/text.hpp"
#include "engine/batch_sink.hpp"
#include "engine/hash_pool.hpp"
#include "engine/offload/offload.hpp"
#include "engine/volume.hpp"
#include "engine/walk.hpp"
#include "engine/walker.hpp"
#include "store/files.hpp"
#include "store/store.hpp"

namespace sq::engine {

int default_workers() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(n == 0 ? 2u : n, 1u, 16u));
}

namespace {

using Clock = std::chrono::steady_clock;

// The longest volume-relative path a copy can have: a mirror keeps a file
// at <volume>/<path> and its earlier versions at
// <volume>/.squirrel-history/run-<id>/<path>, and the system refuses names
// of PATH_MAX bytes. A longer path could be walked but never copied, so
// the index refuses it rather than record a file nothing will protect.
std::size_t max_copyable_path(const std::string& volume) {
  constexpr std::size_t kHistory = std::string_view("/.squirrel-history/run-").size() + 19 + 1;  // 19: int64 digits
  constexpr std::size_t kLongest = PATH_MAX - 1;  // bytes before the terminating NUL
  return kLongest > volume.size() + kHistory ? kLongest - volume.size() - kHistory : 0;
}

// Why the walk leaves an entry out of the index.
enum class Skip {
  none,
  marker,        // the volume's own marker
  reserved,      // a name squirrel reserves at the volume's top
  restore_temp,  // a file named like a restore's temp file
  too_long,      // a path no copy could have
};

class Indexer {
 public:
  Indexer(store::Store& st, const IndexOptions& opts, const IndexListener& listener)
      : db_(st.db()), opts_(opts), listener_(listener) {}

  void run(ResolvedVolume& vol, IndexReport& report);

 private:
  bool writes() const { return opts_.mode == IndexMode::index && !opts_.dry_run; }
  bool trusts_stat(const store::LiveRow* live, const FileStat& st) const;
  Skip skip_of(const std::string& rel, const DirEntry& e) const;
  void skipped(const std::string& rel, const DirEntry& e, Skip why);
  bool under_unread(const std::string& folder) const;
  void visit(const WalkedDir& dir);
  void classify_files(const std::string& rel, const DirListing& listing);
  void submit(HashJob job, const store::LiveRow* live);
  void handle(HashResult r);
  void record(const HashResult& r, const std::optional<store::LiveRow>& live, bool unchanged);
  void drain(bool wait);
  void flush_batch();
  void collect_unwalked();
  void settle();
  void unseen(const std::string& path, std::int64_t content_id);
  void not_observed(const std::string& path);
  void emit(IndexEvent::Type t, const std::string& path, const std::string& msg);
  void file_error(const std::string& path, const std::string& msg);

  store::Db& db_;
  IndexOptions opts_;
  IndexListener listener_;
  IndexReport* report_ = nullptr;
  int root_ = -1;
  std::int64_t volume_id_ = 0;  // 0 before the first index
  std::int64_t run_id_ = 0;
  std::size_t max_path_ = 0;
  std::unique_ptr<HashPool> pool_;
  std::unique_ptr<BatchSink> sink_;
  std::map<std::string, store::LiveRow> pending_live_;  // path -> live row, for jobs in flight
  std::vector<store::Observation> batch_;
  std::vector<store::UnseenRow> unseen_;
  std::set<std::string> walked_;
  bool had_files_ = false;      // the volume had file rows when the run began
  std::int64_t unstamped_ = 0;  // seen unchanged and not written: settle() stamps them
  // Folders listed in full -> names in them this walk did not observe (a
  // file error, or a row the listing lacked): what a partial walk may stamp.
  std::map<std::string, std::set<std::string>> listed_;
  // Paths the walk could not look into (a folder it could not list or was
  // refused, an entry it could not stat): rows beneath them are not judged
  // missing. Everything else the walk listed still is.
  std::set<std::string> unread_;
  std::int64_t files_done_ = 0;
  Clock::time_point last_progress_ = Clock::now();
};

void Indexer::emit(IndexEvent::Type t, const std::string& path, const std::string& msg) {
  if (listener_) listener_({t, path, msg, files_done_, report_->bytes_hashed});
}

void Indexer::not_observed(const std::string& path) {
  auto [folder, name] = store::split_path(path);
  if (auto it = listed_.find(folder); it != listed_.end()) it->second.insert(name);
}

Skip Indexer::skip_of(const std::string& rel, const DirEntry& e) const {
  if (e.type == DirEntry::Type::special) return Skip::none;
  bool file = e.type == DirEntry::Type::file;
  if (rel.empty() && file && e.name == kMarkerName) return Skip::marker;
  if (file && restore_temp_like(e.name)) return Skip::restore_temp;  // at the top too: say what it is
  if (rel.empty() && reserved_at_root(e.name)) return Skip::reserved;
  if ((rel.empty() ? 0 : rel.size() + 1) + e.name.size() > max_path_) return Skip::too_long;
  return Skip::none;
}

// Reserved names are reported, never recorded: a row under one would be
// left out of every copy while status counted the volume as safe.
void Indexer::skipped(const std::string& rel, const DirEntry& e, Skip why) {
  std::string path = join_rel(rel, e.name);
  bool folder = e.type == DirEntry::Type::directory;
  switch (why) {
    case Skip::none:
    case Skip::marker:
      return;
    case Skip::reserved:
      report_->reserved += 1;
      return emit(IndexEvent::Type::warning, path,
                  e.name == ".squirrel-restore-history"
                      ? "holds the files `restore --in-place` moved aside; squirrel neither indexes nor copies them — "
                        "move what you want to keep back into the volume, then delete the folder"
                      : "squirrel reserves this name at the top of a volume: not indexed and never copied — rename it");
    case Skip::restore_temp:
      report_->reserved += 1;
      return emit(IndexEvent::Type::warning, path,
                  "named like the temp file of an interrupted restore: not indexed and never copied — delete it, or "
                  "rename it if it is yours");
    case Skip::too_long:
      if (folder) unread_.insert(path);
      return file_error(path, fmt::format("the path is {} bytes, longer than the {} a copy of it can have — shorten "
                                          "it{}", path.size(), max_path_, folder ? "; nothing in it is indexed" : ""));
  }
}

bool Indexer::under_unread(const std::string& folder) const {
  if (unread_.empty()) return false;
  for (std::string p = folder;;) {
    if (unread_.count(p)) return true;
    if (p.empty()) return false;
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? std::string() : p.substr(0, slash);
  }
}

void Indexer::file_error(const std::string& path, const std::string& msg) {
  not_observed(path);
  report_->errors += 1;
  emit(IndexEvent::Type::file_error, path, msg);
}

// Shallow index and the default audit judge a present row by size + mtime.
bool Indexer::trusts_stat(const store::LiveRow* live, const FileStat& st) const {
  bool by_stat = opts_.mode == IndexMode::audit || (opts_.mode == IndexMode::index && opts_.shallow);
  return by_stat && live && live->status == "present" && live->size == st.size && live->mtime_ns == st.mtime_ns;
}

void Indexer::run(ResolvedVolume& vol, IndexReport& report) {
  report_ = &report;
  root_ = vol.root.get();
  volume_id_ = vol.row ? vol.row->id : 0;
  run_id_ = report.run_id;
  max_path_ = max_copyable_path(vol.name);
  had_files_ = volume_id_ && store::volume_has_files(db_, volume_id_);
  int workers = opts_.workers > 0 ? opts_.workers : default_workers();
  // Results are consumed in walk order by this thread, which also walks and
  // submits; a deep queue keeps the workers busy while it is descheduled.
  pool_ = std::make_unique<HashPool>(root_, workers, std::max<std::size_t>(2048, 512 * workers));
  if (writes()) sink_ = std::make_unique<BatchSink>(store::open_peer_connection(db_), volume_id_, run_id_);
  {
    // A volume with no file rows has nothing to compare a stat with, and
    // every file gets hashed: the walk leaves regular files to the fstat
    // of the worker that opens them, one name lookup per file instead of two.
    auto enter = [this](const std::string& rel, const DirEntry& e) { return skip_of(rel, e) == Skip::none; };
    Walker walker(root_, 64, opts_.mode != IndexMode::index || had_files_, enter);
    while (auto dir = walker.next()) visit(*dir);
  }
  while (!pool_->idle()) drain(true);
  flush_batch();
  pool_.reset();
  if (sink_) sink_->finish();
  sink_.reset();
  collect_unwalked();
  settle();
  emit(IndexEvent::Type::progress, "", "done");
}

void Indexer::visit(const WalkedDir& dir) {
  const std::string& rel = dir.rel;
  walked_.insert(rel);
  if (!dir.listing.error.empty()) {
    unread_.insert(rel);
    file_error(rel.empty() ? "." : rel, "cannot read directory: " + dir.listing.error);
    return;
  }
  listed_.try_emplace(rel);
  for (const auto& [name, msg] : dir.listing.errors) {
    unread_.insert(join_rel(rel, name));  // perhaps a folder: nothing beneath it is judged
    file_error(join_rel(rel, name), msg);
  }
  classify_files(rel, dir.listing);
}

void Indexer::classify_files(const std::string& rel, const DirListing& listing) {
  std::map<std::string, store::LiveRow> live;
  if (had_files_)
    for (auto& row : store::live_rows_in_folder(db_, volume_id_, rel)) live.emplace(row.name, std::move(row));
  std::set<std::string> seen;  // names that are there (or may be): never judged missing
  for (const auto& [name, msg] : listing.errors) seen.insert(name);
  for (const auto& e : listing.entries) {
    if (e.type == DirEntry::Type::special) report_->skipped_special += 1;
    if (auto why = skip_of(rel, e); why != Skip::none) {
      skipped(rel, e, why);
      if (why == Skip::too_long) seen.insert(e.name);  // refused, not gone; a reserved name's old row retires
      continue;
    }
    if (e.type != DirEntry::Type::file) continue;
    if (!live.empty()) seen.insert(e.name);
    auto it = live.find(e.name);
    const store::LiveRow* lr = it == live.end() ? nullptr : &it->second;
    bool by_stat = e.stat_known && trusts_stat(lr, e.stat);
    bool hash = !by_stat && opts_.mode != IndexMode::audit;
    submit(HashJob{0, join_rel(rel, e.name), hash, e.stat, listing.fd}, lr);
  }
  for (const auto& [name, row] : live)
    if (row.status == "present" && !seen.count(name)) unseen(join_rel(rel, name), row.content_id);
}

void Indexer::submit(HashJob job, const store::LiveRow* live) {
  if (live) pending_live_.emplace(job.path, *live);
  while (!pool_->can_submit()) drain(true);
  pool_->submit(std::move(job));
  drain(false);
}

void Indexer::unseen(const std::string& path, std::int64_t content_id) {
  not_observed(path);
  report_->missing += 1;
  unseen_.push_back({path, content_id});
  if (opts_.mode != IndexMode::index) emit(IndexEvent::Type::finding, path, "missing");
}

void Indexer::drain(bool wait) {
  while (auto r = pool_->next_ready(wait)) {
    handle(std::move(*r));
    wait = false;
  }
}

void Indexer::handle(HashResult r) {
  const std::string path = r.job.path;
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
  bool unchanged = r.job.needs_hash ? present && lr->hash == r.hash : trusts_stat(lr ? &*lr : nullptr, r.stat);
  record(r, lr, unchanged);
  auto now = Clock::now();
  if (now - last_progress_ > std::chrono::milliseconds(100)) {
    last_progress_ = now;
    emit(IndexEvent::Type::progress, path, "");
  }
}

// Unchanged files whose mtime and inode still match need no write at all:
// settle() stamps them in one statement at the end.
void Indexer::record(const HashResult& r, const std::optional<store::LiveRow>& lr, bool unchanged) {
  if (unchanged) report_->unchanged += 1;
  else if (lr) report_->modified += 1;
  else report_->added += 1;
  if (!writes()) {
    if (!unchanged && opts_.mode != IndexMode::index) emit(IndexEvent::Type::finding, r.job.path, lr ? "modified" : "added");
    return;
  }
  if (unchanged && (!r.job.needs_hash || (lr->mtime_ns == r.stat.mtime_ns && lr->inode == r.stat.inode))) {
    unstamped_ += 1;
    return;
  }
  batch_.push_back({r.job.path, unchanged ? lr->hash : r.hash, r.stat.size, r.stat.mtime_ns, r.stat.inode,
                    !r.job.needs_hash, !lr.has_value()});
  if (batch_.size() >= opts_.batch_size) flush_batch();
}

void Indexer::flush_batch() {
  if (batch_.empty() || !writes()) return;
  sink_->push(std::move(batch_));
  batch_ = {};
}

// Folders the index knows but the walk never reached are gone entirely,
// unless they lie beneath a path the walk could not look into. Rows
// written by this run were all walked, so a volume that had none when the
// run began has nothing to collect (and a first index skips the scan).
void Indexer::collect_unwalked() {
  if (!volume_id_ || !had_files_) return;
  store::Stmt st(db_,
                 "SELECT d.path, f.name, f.content_id FROM files f JOIN folders d ON d.id = f.folder_id WHERE "
                 "d.volume_id = ? AND f.status = 'present' ORDER BY d.path, f.name");
  st.bind(1, volume_id_);
  while (st.step()) {
    auto folder = st.blob(0);
    std::string path(folder.begin(), folder.end());
    if (walked_.count(path) || under_unread(path)) continue;
    auto name = st.blob(1);
    unseen(join_rel(path, std::string(name.begin(), name.end())), st.i64(2));
  }
}

// A walk with errors still flags what vanished from every folder it listed
// (the paths it could not look into never reached unseen_), but stamps
// only the rows it observed instead of every present row.
void Indexer::settle() {
  if (!writes()) return;
  bool complete = report_->errors == 0;
  report_->missing = store::settle_walk(db_, volume_id_, run_id_, unseen_, complete && unstamped_ > 0);
  if (!complete) store::stamp_listed_folders(db_, volume_id_, run_id_, listed_);
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

// Two first indexes of one volume can both find it unadopted; the loser's
// exclusive marker create or volume insert then fails. Resolve again and go
// on when the winner's marker or row is what changed: the gate decides next.
void adopt(const config::Config& cfg, store::Db& db, ResolvedVolume& vol) {
  for (;;) {
    try {
      return adopt_volume(db, vol);
    } catch (const Error&) {
      auto again = resolve_volume(cfg, db, vol.name, ResolveMode::first_index);
      bool progressed = (again.marker_present && !vol.marker_present) || (again.row && !vol.row);
      if (!progressed) throw;
      vol = std::move(again);
    }
  }
}

// A forgotten volume back in the config and indexed again is active again;
// the run that brought it back says so in the audit trail.
void remember_volume(store::Db& db, const store::VolumeRow& row, std::int64_t run_id) {
  store::Tx tx(db);
  store::set_forgotten(db, row.id, std::nullopt);
  store::append_audit(db, run_id, "volume-remember", std::nullopt, now_ns(),
                      fmt::format("{} was forgotten by run {}; indexed again, it is active again", row.name,
                                  *row.forgotten_run));
  tx.commit();
}

void begin_gated(const config::Config& cfg, store::Db& db, const IndexOptions& opts, ResolvedVolume& vol,
                 IndexReport& report) {
  if (opts.dry_run) return;
  if (opts.mode == IndexMode::index) adopt(cfg, db, vol);
  store::BeginOptions bo;
  bo.shallow = opts.mode == IndexMode::audit || opts.shallow;
  report.run_id = store::begin_run_or_throw(db, {kind_of(opts), vol.row->id, ""}, bo);
  if (opts.mode == IndexMode::index && vol.row->forgotten_run) remember_volume(db, *vol.row, report.run_id);
  // Before the walk: a file a killed offload unlinked is offloaded, not missing.
  try {
    report.settled_offloaded = settle_interrupted_offloads(db, vol.root.get(), vol.row->id).offloaded;
  } catch (const std::exception& e) {
    store::finish_run(db, report.run_id, {store::RunStatus::failed, e.what(), 0, std::nullopt});
    throw;
  }
}

void finish(store::Db& db, IndexReport& r, const IndexOptions& opts) {
  if (!r.run_id) return;
  // Status reads this row to count what is not protected: the walk itself
  // was complete, so the run's status does not change for it.
  if (r.reserved && opts.mode == IndexMode::index)
    store::append_audit(db, r.run_id, kReservedNamesTransition, std::nullopt, now_ns(), std::to_string(r.reserved));
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
  begin_gated(cfg, db, opts, vol, report);
  try {
    Indexer(st, opts, listener).run(vol, report);
  } catch (const std::exception& e) {
    if (report.run_id) {
      report.status = store::RunStatus::failed;
      store::finish_run(db, report.run_id, {store::RunStatus::failed, e.what(), 0, std::nullopt});
    }
    throw;
  }
  finish(db, report, opts);
  return report;
}

}  // namespace sq::engine
