#include "engine/restore/restore.hpp"

#include <fmt/format.h>

#include <functional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/dest/transport.hpp"
#include "engine/offload/offload.hpp"
#include "engine/restore/internal.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/sync/push.hpp"
#include "engine/volume.hpp"
#include "store/artifacts.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine {

using restore_detail::RestoreItem;

namespace {

// Which rows are the files to restore: the current ones (present,
// offloaded, and missing for --missing), or with --at each path's version
// that was there when that run began — recorded by then, and not yet
// superseded or deleted (the run that superseded or deleted it came
// later). MAX(first_seen_run_id) makes SQLite take the newest such row of
// a path.
std::string rows_wanted(const std::optional<std::int64_t>& at_run) {
  if (!at_run) return "f.status IN ('present','offloaded','missing')";
  return "f.first_seen_run_id <= ?3 AND (f.status IN ('present','offloaded') OR f.status_changed_run_id > ?3)";
}

std::vector<RestoreItem> load_items(store::Db& db, std::int64_t volume_id, const std::string& dest,
                                    const std::string& volume, const std::optional<std::int64_t>& at_run) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, f.status, l.id, h.displaced_run_id, "
      "MAX(f.first_seen_run_id) FROM files f JOIN folders d ON d.id = f.folder_id JOIN contents c ON c.id = "
      "f.content_id "
      "LEFT JOIN remote_paths l ON l.destination = ?2 AND l.folder_id = f.folder_id AND l.name = f.name AND "
      "l.content_id = f.content_id AND l.state = 'live' "
      "LEFT JOIN remote_paths h ON l.id IS NULL AND h.destination = ?2 AND h.folder_id = f.folder_id AND h.name = "
      "f.name AND h.content_id = f.content_id AND h.state = 'displaced' "
      "WHERE d.volume_id = ?1 AND {} AND {} GROUP BY f.folder_id, f.name ORDER BY d.path, f.name",
      rows_wanted(at_run), store::kOutsideReserved);
  store::Stmt st(db, sql);
  st.bind(1, volume_id).bind(2, dest);
  if (at_run) st.bind(3, *at_run);
  std::vector<RestoreItem> out;
  while (st.step()) {
    RestoreItem it;
    it.path = store::join_path(st.bytes_str(0), st.bytes_str(1));
    it.content_id = st.i64(2);
    it.hash = st.digest(3);
    it.size = st.i64(4);
    it.mtime_ns = st.i64(5);
    auto status = st.text(6);
    // Only a current row comes back to present; an older version restored
    // over today's file is a change the next index records.
    it.revive = status == "offloaded" || status == "missing";
    it.missing = !at_run && status == "missing";
    if (!st.is_null(7)) it.source = volume + "/" + it.path;
    else if (!st.is_null(8)) it.source = fmt::format("{}/.squirrel-history/run-{}/{}", volume, st.i64(8), it.path);
    out.push_back(std::move(it));
  }
  return out;
}

// Content is the entity: the offload gate accepts a verified copy of a
// file's bytes wherever it lies at the destination (fingerprint_backs), so
// a file must be restorable from any copy of its content there — when its
// own copy is gone, and when its own copy turns out damaged while streamed.
// Copies are ranked: this volume's before another's, live before displaced
// (history), then verified, most recently verified, newest. Every copy is
// still hashed against the file's own record while streamed.
void find_other_copies(store::Db& db, std::int64_t volume_id, const std::string& dest,
                       std::vector<RestoreItem>& items) {
  std::set<std::int64_t> wanted;
  for (const auto& it : items) wanted.insert(it.content_id);
  if (wanted.empty()) return;
  store::Stmt st(db,
                 "SELECT l.content_id, v.name, d.path, l.name, l.state, l.displaced_run_id FROM remote_paths l JOIN "
                 "folders d ON d.id = l.folder_id JOIN volumes v ON v.id = d.volume_id WHERE l.destination = ?1 AND "
                 "l.state IN ('live','displaced') ORDER BY l.content_id, d.volume_id = ?2 DESC, l.state = 'live' DESC, "
                 "(l.checksum IS NOT NULL AND l.verified_at_ns IS NOT NULL) DESC, l.verified_at_ns DESC, l.id DESC");
  st.bind(1, dest).bind(2, volume_id);
  std::map<std::int64_t, std::vector<std::string>> copies;  // content -> names at the destination, best first
  while (st.step()) {
    std::int64_t content = st.i64(0);
    if (!wanted.contains(content)) continue;
    std::string volume = st.text(1), path = store::join_path(st.bytes_str(2), st.bytes_str(3));
    copies[content].push_back(st.text(4) == "live"
                                  ? volume + "/" + path
                                  : fmt::format("{}/.squirrel-history/run-{}/{}", volume, st.i64(5), path));
  }
  for (auto& it : items) {
    auto c = copies.find(it.content_id);
    if (c == copies.end()) continue;
    for (const auto& name : c->second)
      if (name != it.source) it.others.push_back(name);
    if (it.source.empty() && !it.others.empty()) {
      it.source = it.others.front();
      it.others.erase(it.others.begin());
    }
  }
}

bool selected(const std::string& path, const std::string& s) {
  return s == "." || path == s || (path.size() > s.size() && path.compare(0, s.size(), s) == 0 && path[s.size()] == '/');
}

// Keeps what the options ask for; a selector that names no file at all is
// an error (said before anything is written), never a silent success.
void select_items(std::vector<RestoreItem>& items, const RestoreOptions& o) {
  std::vector<bool> used(o.selectors.size(), false);
  std::erase_if(items, [&](const RestoreItem& it) {
    bool named = false;
    for (std::size_t i = 0; i < o.selectors.size(); ++i)
      if (selected(it.path, o.selectors[i])) named = used[i] = true;
    if (o.missing) return !it.missing || (!o.selectors.empty() && !named);
    return o.selectors.empty() ? it.missing : !named;
  });
  for (std::size_t i = 0; i < o.selectors.size(); ++i)
    if (!used[i])
      throw Error(ErrorKind::usage, fmt::format("\"{}\" names no file of the volume{} — see `squirrel query --missing` "
                                                "or the paths in `squirrel status`",
                                                escape_for_display(o.selectors[i]), o.missing ? " the index calls missing" : ""));
}

bool content_addressed(const config::Destination& d) { return d.native_content() || d.native_packed(); }

std::optional<std::string> configured_source(const config::Config& cfg, const std::string& volume,
                                             const std::string& from) {
  if (!from.empty()) return from;
  for (const auto& t : cfg.volume(volume)->sync_to)
    if (const auto* d = cfg.destination(t); d && (d->native_mirror() || content_addressed(*d))) return t;
  return std::nullopt;
}

std::string pick_source(const config::Config& cfg, const std::string& volume, const std::string& from) {
  if (auto source = configured_source(cfg, volume, from)) return *source;
  throw Error(ErrorKind::usage, fmt::format("volume \"{}\" syncs to no local or sftp mirror or content-addressed destination — pass --from DEST", volume));
}

// Preflight refusals (a re-pointed volume, a missing marker, a target in
// the way) leave a `refused` run row, as index, sync and offload do, so
// they show up in the audit trail. A dry run records nothing.
class Preflight {
 public:
  Preflight(const config::Config& cfg, store::Db& db, const std::string& volume, const RestoreOptions& opts)
      : cfg_(cfg), db_(db), volume_(volume), opts_(opts) {}

  // Runs one preflight step; a refusal it throws is recorded, then propagates.
  template <class Step>
  auto operator()(Step&& step) -> decltype(step()) {
    try {
      return step();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::refused) record(e);
      throw;
    }
  }

 private:
  void record(const Error& e) {
    auto source = configured_source(cfg_, volume_, opts_.from);
    if (opts_.dry_run || !source) return;  // without a source there is no restore to name
    auto row = store::find_volume(db_, volume_);
    store::record_terminal_run(db_, {store::RunKind::restore, row ? std::optional(row->id) : std::nullopt, *source},
                               store::RunStatus::refused, e.what());
  }

  const config::Config& cfg_;
  store::Db& db_;
  const std::string& volume_;
  const RestoreOptions& opts_;
};

// Judged before the run begins; nothing is created until it has begun, so
// a refused restore (a busy volume, a missing marker) leaves no directory.
// A killed restore leaves folders and temp files beside its targets; such a
// tree counts as empty, so the same command can simply be run again (the
// run removes the temps it can prove are a finished run's own).
bool holds_only_restore_leftovers(const std::string& to) {
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(to, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
    if (!it->is_regular_file(ec) || !restore_detail::temp_name_run(it->path().filename().string())) return false;
  }
  return !ec;
}

void check_target_root(const std::string& to, bool in_place) {
  std::error_code ec;
  if (std::filesystem::exists(to, ec) && !in_place && !std::filesystem::is_empty(to, ec) &&
      !holds_only_restore_leftovers(to))
    throw Error(ErrorKind::refused, fmt::format("{} is not empty — restore into an empty directory, or pass --in-place "
                                                "(files already correct are kept, so this also finishes an interrupted "
                                                "restore; other files in the way move to .squirrel-restore-history)",
                                                to));
}

Fd create_target_root(const std::string& to) {
  std::error_code ec;
  std::filesystem::create_directories(to, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", to, ec.message()));
  return open_root(to);
}

std::unique_ptr<dest::Transport> open_source(const RestoreOptions& opts, const config::Destination& d) {
  return sync::open_mirror_transport(d, opts.transport);
}

// The copies must come from this volume's directory at the destination;
// an unmounted disk or a re-pointed root must not be read as the source.
void require_marker(dest::Transport& t, const std::string& volume, const std::string& root) {
  if (auto why = sync::marker_problem(t, volume))
    throw Error(ErrorKind::refused, fmt::format("{} under {} — is the disk mounted?", *why, root));
}

std::int64_t begin_restore(store::Db& db, std::optional<std::int64_t> volume_id, const std::string& dest) {
  return store::begin_run_or_throw(db, {store::RunKind::restore, volume_id, dest});
}

void finish(store::Db& db, std::optional<std::int64_t> vol, RestoreReport& rep,
            const std::vector<store::OffloadFlip>& revive, const RestoreListener& listener) {
  if (vol)
    for (const auto& path : store::mark_restored_batch(db, *vol, rep.run_id, revive)) {
      rep.failed += 1;
      if (listener)
        listener({RestoreEvent::Type::file_error, path, "restored, but the index row could not be flipped back to "
                                                        "present — run `squirrel index`", 0, 0, 0, 0});
    }
  rep.revived = static_cast<std::int64_t>(revive.size());
  // A damaged copy at the destination is a finding even when another copy
  // stood in for it: the run is partial until `verify` records it.
  // So are bytes restored without a receipt to check them against.
  bool clean = rep.failed == 0 && rep.no_copy == 0 && rep.refused_existing == 0 && rep.mismatched == 0 &&
               rep.unnamed == 0;
  rep.status = clean ? store::RunStatus::success : store::RunStatus::partial;
  store::finish_run(db, rep.run_id,
                    {rep.status, clean ? "" : fmt::format("{} failed, {} cop(ies) did not match ({} file(s) restored "
                                                          "from another copy), {} without a copy, {} left in place, {} "
                                                          "unchecked (no receipt)",
                                                          rep.failed, rep.mismatched, rep.other_copy, rep.no_copy,
                                                          rep.refused_existing, rep.unnamed),
                     rep.restored + rep.already_correct, rep.restored});
}

// A leftover temp is provably a restore's own when its name carries the id
// of a restore run that is over (a killed run is reaped before this run
// began) and its inode last changed while that run ran: a file that merely
// looks like a temp, or came from another database's run of the same id,
// is left alone. The slack covers file systems' coarse timestamps.
restore_detail::IsOwnLeftover own_leftover(store::Db& db) {
  constexpr std::int64_t kClockSlackNs = 2'000'000'000;
  return [&db](const restore_detail::LeftoverTemp& temp) {
    auto rows = db.query_rows("SELECT started_at_ns, ended_at_ns FROM runs WHERE id = ? AND kind = 'restore' AND "
                              "status != 'running' AND ended_at_ns IS NOT NULL",
                              {store::Value{temp.run_id}});
    if (rows.empty()) return false;
    auto started = std::get<std::int64_t>(rows[0][0]), ended = std::get<std::int64_t>(rows[0][1]);
    return temp.ctime_ns >= started - kClockSlackNs && temp.ctime_ns <= ended + kClockSlackNs;
  };
}

void remove_leftovers(store::Db& db, int base, const std::vector<RestoreItem>& items, RestoreReport& rep,
                      const RestoreListener& listener) {
  auto warn = [&](const std::string& path, const std::string& msg) {
    if (listener) listener({RestoreEvent::Type::warning, path, msg, 0, 0, 0, 0});
  };
  auto cleaned = restore_detail::remove_leftover_temps(base, items, own_leftover(db), warn);
  rep.leftover_temps_removed = cleaned.removed;
  rep.leftover_runs = std::move(cleaned.runs);
}

// Members of one pack are restored in the order they lie in it, so each
// reader in flight streams the pack once (member_reader.hpp); everything
// else keeps its order.
std::vector<RestoreItem> in_pack_order(std::vector<RestoreItem> items) {
  std::stable_sort(items.begin(), items.end(), [](const RestoreItem& a, const RestoreItem& b) {
    bool pa = a.member_offset >= 0, pb = b.member_offset >= 0;
    if (pa != pb) return pb;  // files first, then members
    if (!pa) return false;
    return a.source != b.source ? a.source < b.source : a.member_offset < b.member_offset;
  });
  return items;
}

// Begins the run, removes what killed restores left behind, restores the
// items, finishes the run; a crash of the source ends the run failed and
// propagates.
void execute(store::Db& db, std::optional<std::int64_t> vol, dest::Transport& t,
             const std::function<Fd()>& open_target, const std::vector<RestoreItem>& items,
             const RestoreOptions& opts, RestoreReport& rep, const RestoreListener& listener, bool revive_rows) {
  if (!rep.run_id) rep.run_id = begin_restore(db, vol, rep.from);
  try {
    Fd base_fd = open_target();
    int base = base_fd.get();
    remove_leftovers(db, base, items, rep, listener);
    sync::packed::MemberCursors cursors;
    restore_detail::RestoreTarget target{t, base, rep.run_id, opts, listener, revive_rows, &cursors};
    auto revive = restore_detail::restore_items(target, in_pack_order(items), rep);
    finish(db, vol, rep, revive, listener);
  } catch (const std::exception& e) {
    store::finish_run(db, rep.run_id, {store::RunStatus::failed, e.what(), rep.restored, rep.restored});
    throw;
  }
}

void count_dry_run(const std::vector<RestoreItem>& items, RestoreReport& rep) {
  for (const auto& it : items) {
    (it.source.empty() ? rep.no_copy : rep.restored) += 1;
    rep.unnamed += it.hash ? 0 : 1;
    rep.bytes += it.source.empty() ? 0 : std::max<std::int64_t>(it.size, 0);
  }
}

// A dry run predicts the real one: what is already there with the right
// bytes (hashed, as the real run hashes it) is not restored, and what is in
// the way without --in-place is left alone.
void predict_dry_run(int base, const std::vector<RestoreItem>& items, const RestoreOptions& opts,
                     RestoreReport& rep) {
  restore_detail::CopyBuffer buf(restore_detail::kCopyBuffer);
  std::vector<RestoreItem> to_fetch;
  for (const auto& it : items) {
    auto [folder, name] = store::split_path(it.path);
    Fd dir = restore_detail::open_existing_dir(base, folder);
    struct stat st {};
    bool exists = dir && ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISREG(st.st_mode) && it.hash && restore_detail::already_correct(dir.get(), name, it, buf))
      rep.already_correct += 1;
    else if (exists && !opts.in_place)
      rep.refused_existing += 1;
    else
      to_fetch.push_back(it);
  }
  count_dry_run(to_fetch, rep);
}

RestoreReport start_report(const config::Config& cfg, const std::string& volume, const RestoreOptions& opts) {
  RestoreReport rep;
  rep.volume = volume;
  rep.dry_run = opts.dry_run;
  rep.from = pick_source(cfg, volume, opts.from);
  rep.to = opts.to.empty() ? cfg.volume(volume)->path.string() : opts.to;
  return rep;
}

// A content-addressed or packed destination holds each content once: at
// objects/<hex>, or as a member of a pack it holds.
void find_objects(store::Db& db, const std::string& dest, std::vector<RestoreItem>& items) {
  for (auto& it : items) {
    it.source.clear();
    if (store::object_recorded(db, it.content_id, dest)) {
      it.source = sync::object_name(*it.hash);
    } else if (auto pl = store::pack_place(db, it.content_id, dest)) {
      it.source = sync::pack_name(pl->key);
      it.member_offset = pl->offset;
      it.member_length = pl->length;
    }
  }
}

std::vector<RestoreItem> indexed_items(store::Db& db, std::int64_t volume_id, const RestoreReport& rep,
                                       const RestoreOptions& opts, bool objects) {
  auto items = load_items(db, volume_id, rep.from, rep.volume, opts.at_run);
  select_items(items, opts);
  if (objects) find_objects(db, rep.from, items);
  else find_other_copies(db, volume_id, rep.from, items);
  return items;
}

// Inside the gate, what a killed offload left is settled first: the rows it
// unlinked become offloaded, so they are restored and revived like any other.
// Then the items are read again: what was read before the gate is what the
// run that held it last left, not what this run will find.
std::vector<RestoreItem> items_inside_gate(store::Db& db, ResolvedVolume& vol, RestoreReport& rep,
                                           const RestoreOptions& opts, bool objects) {
  try {
    auto settled = settle_interrupted_offloads(db, vol.root.get(), vol.row->id);
    rep.settled_offloaded = settled.offloaded;
    return indexed_items(db, vol.row->id, rep, opts, objects);
  } catch (const std::exception& e) {
    store::finish_run(db, rep.run_id, {store::RunStatus::failed, e.what(), 0, 0});
    throw;
  }
}

RestoreReport restore_indexed(const config::Config& cfg, store::Db& db, const std::string& volume,
                              const RestoreOptions& opts, const RestoreListener& listener) {
  Preflight preflight(cfg, db, volume, opts);
  auto vol = preflight([&] { return resolve_volume(cfg, db, volume, ResolveMode::existing); });
  RestoreReport rep = start_report(cfg, volume, opts);
  const auto& d = sync::require_push_target(cfg, rep.from);
  bool objects = content_addressed(d);
  auto items = indexed_items(db, vol.row->id, rep, opts, objects);
  rep.selected = static_cast<std::int64_t>(items.size());
  if (opts.dry_run) {
    std::error_code ec;
    if (opts.to.empty()) predict_dry_run(vol.root.get(), items, opts, rep);
    else if (std::filesystem::is_directory(opts.to, ec)) predict_dry_run(open_root(opts.to).get(), items, opts, rep);
    else count_dry_run(items, rep);
    return rep;
  }
  if (!opts.to.empty()) preflight([&] { check_target_root(opts.to, opts.in_place); });
  auto t = preflight([&] { return open_source(opts, d); });
  preflight([&] { require_marker(*t, volume, d.root); });
  rep.run_id = begin_restore(db, vol.row->id, rep.from);
  items = items_inside_gate(db, vol, rep, opts, objects);
  rep.selected = static_cast<std::int64_t>(items.size());
  auto open_target = [&] { return opts.to.empty() ? Fd(::dup(vol.root.get())) : create_target_root(opts.to); };
  execute(db, vol.row->id, *t, open_target, items, opts, rep, listener, opts.to.empty());
  return rep;
}

}  // namespace

// ---- restore without an index ---------------------------------------------------

namespace {

// Restoring into the volume itself on a fresh machine: the directory must
// exist (creating it could fill the wrong disk when the right one is not
// mounted); it becomes the volume (marker, then row) like a first index.
ResolvedVolume adopt_for_restore(const config::Config& cfg, store::Db& db, const std::string& volume) {
  const auto& path = cfg.volume(volume)->path;
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" path {} does not exist — create the directory (or mount "
                                                "its disk) and retry, or restore elsewhere with --to",
                                                volume, path.string()));
  auto vol = resolve_volume(cfg, db, volume, ResolveMode::first_index);
  adopt_volume(db, vol);
  return vol;
}

void copy_listing_counts(const restore_detail::MirrorListing& l, RestoreReport& rep) {
  rep.companions_skipped = l.companions_skipped;
  rep.others_skipped = l.others_skipped;
  rep.receipts_read = l.receipts_read;
  rep.receipts_unreadable = l.receipts_unreadable;
}

RestoreReport restore_without_index(const config::Config& cfg, store::Db& db, const std::string& volume,
                                    const RestoreOptions& opts, const RestoreListener& listener) {
  Preflight preflight(cfg, db, volume, opts);
  auto row = store::find_volume(db, volume);
  std::optional<ResolvedVolume> vol;
  if (row) vol = preflight([&] { return resolve_volume(cfg, db, volume, ResolveMode::existing); });  // re-pointed?
  RestoreReport rep = start_report(cfg, volume, opts);
  rep.without_index = true;
  const auto& d = sync::require_push_target(cfg, rep.from);
  auto t = preflight([&] { return open_source(opts, d); });
  preflight([&] { require_marker(*t, volume, d.root); });
  auto warn = [&](const std::string& path, const std::string& msg) {
    if (listener) listener({RestoreEvent::Type::warning, path, msg, 0, 0, 0, 0});
  };
  rep.from_segments = content_addressed(d);
  auto listing = rep.from_segments ? restore_detail::list_content(*t, volume, warn)
                                   : restore_detail::list_mirror(*t, volume, warn);
  select_items(listing.items, opts);
  copy_listing_counts(listing, rep);
  rep.selected = static_cast<std::int64_t>(listing.items.size());
  if (opts.dry_run) {
    count_dry_run(listing.items, rep);
    return rep;
  }
  bool into_volume = opts.to.empty();
  if (into_volume && !vol) vol = preflight([&] { return adopt_for_restore(cfg, db, volume); });
  if (!into_volume) preflight([&] { check_target_root(opts.to, opts.in_place); });
  std::optional<std::int64_t> vol_id = vol ? std::optional(vol->row->id) : std::nullopt;
  auto open_target = [&] { return into_volume ? Fd(::dup(vol->root.get())) : create_target_root(opts.to); };
  store::BeginOptions bo;
  bo.id_above = sync::highest_run_named(*t, volume, content_addressed(d));  // this index does not know the mirror's runs
  rep.run_id = store::begin_run_or_throw(db, {store::RunKind::restore, vol_id, rep.from}, bo);
  execute(db, vol_id, *t, open_target, listing.items, opts, rep, listener, false);
  return rep;
}

}  // namespace

std::int64_t resolve_at_run(store::Db& db, const std::string& text) {
  const std::string usage = "— --at takes a run id (see `squirrel runs`) or an RFC 3339 time such as "
                            "2026-11-30T18:00:00Z";
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    auto id = text.size() < 19 ? std::stoll(text) : -1;
    if (id > 0 && db.query_i64("SELECT id FROM runs WHERE id = ?", {store::Value{id}})) return id;
    throw Error(ErrorKind::usage, fmt::format("there is no run {} {}", escape_for_display(text), usage));
  }
  auto ns = parse_rfc3339_ns(text);
  if (!ns) throw Error(ErrorKind::usage, fmt::format("\"{}\" is neither a run id nor a time {}", escape_for_display(text), usage));
  auto id = db.query_i64("SELECT MAX(id) FROM runs WHERE started_at_ns <= ?", {store::Value{*ns}});
  if (!id) throw Error(ErrorKind::usage, fmt::format("no run began by {} — the index knows nothing that old", text));
  return *id;
}

RestoreReport run_restore(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const RestoreOptions& opts, const RestoreListener& listener) {
  auto& db = st.db();
  if (!cfg.volume(volume))
    throw config::unknown_volume(volume, cfg.file);
  RestoreOptions o = opts;
  o.selectors = clean_selectors(opts.selectors);
  auto row = store::find_volume(db, volume);
  if (o.at_run && o.missing)
    throw Error(ErrorKind::usage, "--at and --missing cannot be combined — --at already brings back the files "
                                  "deleted since");
  if (row && store::volume_has_files(db, row->id)) return restore_indexed(cfg, db, volume, o, listener);
  if (o.at_run)
    throw Error(ErrorKind::usage, fmt::format("--at needs the index of \"{}\" (it has none here) — restore the "
                                              "latest files without --at",
                                              volume));
  if (o.missing)
    throw Error(ErrorKind::usage, fmt::format("--missing needs the index of \"{}\" (it has none here) — restore the "
                                              "whole volume instead",
                                              volume));
  return restore_without_index(cfg, db, volume, o, listener);
}

}  // namespace sq::engine
