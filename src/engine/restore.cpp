#include "engine/restore.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/dest/transport.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/volume.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine {

namespace {

struct RestoreItem {
  std::string path;
  std::int64_t content_id = 0;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
  bool offloaded = false;
  std::string source;  // name at the destination; empty when no copy is recorded
};

std::string str(const store::Blob& b) { return std::string(b.begin(), b.end()); }

std::vector<RestoreItem> load_items(store::Db& db, std::int64_t volume_id, const std::string& dest,
                                    const std::string& volume) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, f.status, l.id, h.displaced_run_id "
      "FROM files f JOIN folders d ON d.id = f.folder_id JOIN contents c ON c.id = f.content_id "
      "LEFT JOIN remote_paths l ON l.destination = ?2 AND l.folder_id = f.folder_id AND l.name = f.name AND "
      "l.content_id = f.content_id AND l.state = 'live' "
      "LEFT JOIN remote_paths h ON l.id IS NULL AND h.destination = ?2 AND h.folder_id = f.folder_id AND h.name = "
      "f.name AND h.content_id = f.content_id AND h.state = 'displaced' "
      "WHERE d.volume_id = ?1 AND f.status IN ('present','offloaded') AND {} GROUP BY f.folder_id, f.name "
      "ORDER BY d.path, f.name",
      store::kOutsideReserved);
  store::Stmt st(db, sql);
  st.bind(1, volume_id).bind(2, dest);
  std::vector<RestoreItem> out;
  while (st.step()) {
    RestoreItem it;
    std::string folder = str(st.blob(0)), name = str(st.blob(1));
    it.path = folder.empty() ? name : folder + "/" + name;
    it.content_id = st.i64(2);
    auto h = st.blob(3);
    std::copy(h.begin(), h.begin() + std::min<std::size_t>(32, h.size()), it.hash.begin());
    it.size = st.i64(4);
    it.mtime_ns = st.i64(5);
    it.offloaded = st.text(6) == "offloaded";
    if (!st.is_null(7)) it.source = volume + "/" + it.path;
    else if (!st.is_null(8)) it.source = fmt::format("{}/.squirrel-history/run-{}/{}", volume, st.i64(8), it.path);
    out.push_back(std::move(it));
  }
  return out;
}

bool matches(const std::string& path, const std::vector<std::string>& sels) {
  if (sels.empty()) return true;
  return std::any_of(sels.begin(), sels.end(), [&](const std::string& s) {
    return s == "." || path == s || (path.size() > s.size() && path.compare(0, s.size(), s) == 0 && path[s.size()] == '/');
  });
}

std::string pick_source(const config::Config& cfg, const std::string& volume, const std::string& from) {
  if (!from.empty()) return from;
  for (const auto& t : cfg.volume(volume)->sync_to)
    if (const auto* d = cfg.destination(t); d && d->type == "local" && d->layout == "mirror") return t;
  throw Error(ErrorKind::usage, fmt::format("volume \"{}\" syncs to no local mirror — pass --from DEST", volume));
}

}  // namespace

// ---- writing one file beneath the target root -----------------------------------

namespace {

// Opens (creating as needed) the directory that will hold `path`, one
// component at a time and never through a symlink.
Fd open_parent(int base, const std::string& path) {
  auto [folder, name] = store::split_path(path);
  Fd dir(::dup(base));
  if (folder.empty()) return dir;
  std::size_t start = 0;
  while (start <= folder.size()) {
    auto end = folder.find('/', start);
    if (end == std::string::npos) end = folder.size();
    std::string part = folder.substr(start, end - start);
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("cannot create " + part, errno);
    int next = ::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) fail_errno(fmt::format("{} is not a plain directory (a symlink or a file is in the way)", part), errno);
    dir = Fd(next);
    start = end + 1;
  }
  return dir;
}

bool already_correct(int parent, const std::string& name, const RestoreItem& it) {
  Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != it.size) return false;
  Hasher h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return false;
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  return h.finalize() == it.hash;
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno("cannot write the restored file", errno);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Streams the copy into `tmp` while hashing; a mismatch removes the temp
// file, so bad bytes never reach the target name.
void fetch_verified(dest::Transport& t, int parent, const std::string& tmp, const RestoreItem& it) {
  Fd out(::openat(parent, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!out) fail_errno("cannot create a temporary file beside the target", errno);
  try {
    auto in = t.get(it.source);
    Hasher h;
    std::vector<char> buf(1 << 20);
    std::int64_t total = 0;
    while (std::size_t n = in->read(buf.data(), buf.size())) {
      h.update(buf.data(), n);
      write_all(out.get(), buf.data(), n);
      total += static_cast<std::int64_t>(n);
    }
    if (total != it.size || h.finalize() != it.hash)
      throw Error(ErrorKind::corrupt, "the copy at the destination does not match the index — run `squirrel verify`");
    struct timespec times[2] = {{0, UTIME_OMIT}, {it.mtime_ns / 1000000000LL, it.mtime_ns % 1000000000LL}};
    if (::futimens(out.get(), times) != 0 || ::fsync(out.get()) != 0) fail_errno("cannot flush the restored file", errno);
  } catch (...) {
    ::unlinkat(parent, tmp.c_str(), 0);
    throw;
  }
}

void move_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) != 0)
    fail_errno(fmt::format("cannot move {} into place", to), errno);
}

}  // namespace

// ---- the run ----------------------------------------------------------------------

namespace {

struct Restorer {
  dest::Transport& t;
  int base;
  std::int64_t run_id;
  const RestoreOptions& opts;
  RestoreReport& rep;
  const RestoreListener& listener;
  std::vector<store::OffloadFlip> revive;
  bool into_volume = true;

  void event(RestoreEvent::Type type, const std::string& path, const std::string& msg) {
    if (listener) listener({type, path, msg, rep.restored, rep.selected, rep.bytes, 0});
  }

  // Moves what is in the way to .squirrel-restore-history/run-<id>/<path>.
  void displace(int parent, const std::string& name, const std::string& path) {
    std::string hist = fmt::format(".squirrel-restore-history/run-{}/{}", run_id, path);
    Fd hp = open_parent(base, hist);
    move_noreplace(parent, name, hp.get(), store::split_path(hist).second);
    ::fsync(hp.get());
    rep.displaced += 1;
  }

  void one(const RestoreItem& it) {
    auto [folder, name] = store::split_path(it.path);
    Fd parent = open_parent(base, it.path);
    struct stat st {};
    bool exists = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISREG(st.st_mode) && already_correct(parent.get(), name, it)) {
      rep.already_correct += 1;
      if (it.offloaded && into_volume) revive.push_back({it.path, it.content_id});
      return;
    }
    if (exists && !opts.in_place) {
      rep.refused_existing += 1;
      return event(RestoreEvent::Type::warning, it.path, "something else is there; left alone (use --in-place)");
    }
    if (opts.dry_run) {
      rep.restored += 1;
      rep.bytes += it.size;
      return;
    }
    std::string tmp = fmt::format(".squirrel-restore-{}-{}", run_id, to_hex(blake3(name)).substr(0, 16));
    fetch_verified(t, parent.get(), tmp, it);
    if (exists) displace(parent.get(), name, it.path);
    move_noreplace(parent.get(), tmp, parent.get(), name);
    ::fsync(parent.get());
    rep.restored += 1;
    rep.bytes += it.size;
    if (it.offloaded && into_volume) revive.push_back({it.path, it.content_id});
    event(RestoreEvent::Type::progress, it.path, "");
  }
};

Fd open_target_root(const std::string& to, bool in_place, bool dry_run) {
  std::error_code ec;
  if (!std::filesystem::exists(to, ec)) {
    if (dry_run) return Fd();
    std::filesystem::create_directories(to, ec);
    if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", to, ec.message()));
  } else if (!in_place && !std::filesystem::is_empty(to, ec)) {
    throw Error(ErrorKind::refused, fmt::format("{} is not empty — restore into an empty directory, or pass --in-place "
                                                "(files in the way move to .squirrel-restore-history)", to));
  }
  return open_root(to);
}

}  // namespace

namespace {

// The copies must come from this volume's directory at the destination;
// an unmounted disk or a re-pointed root must not be read as the source.
void require_marker(dest::Transport& t, const std::string& volume, const std::string& root) {
  std::string name = volume + "/" + kMarkerName, text;
  try {
    auto in = t.get(name);
    char buf[4096];
    while (std::size_t n = in->read(buf, sizeof buf)) text.append(buf, n);
  } catch (const Error& e) {
    throw Error(ErrorKind::refused, fmt::format("cannot read {}/{} ({}) — is the disk mounted?", root, name, e.what()));
  }
  auto m = parse_marker(text);
  if (!m || m->volume != volume)
    throw Error(ErrorKind::refused, fmt::format("{}/{} does not name volume \"{}\"", root, name, volume));
}

std::int64_t begin_restore(store::Db& db, std::int64_t volume_id, const std::string& dest) {
  auto begun = store::begin_run(db, {store::RunKind::restore, volume_id, dest});
  if (!begun.began())
    throw Error(ErrorKind::conflict, fmt::format("already running (run={}, {}, started {})", begun.blocker->id,
                                                 store::to_string(begun.blocker->kind),
                                                 rfc3339_utc(begun.blocker->started_at_ns)));
  return begun.run_id;
}

void restore_all(Restorer& r, const std::vector<RestoreItem>& items) {
  for (const auto& it : items) {
    if (it.source.empty()) {
      r.rep.no_copy += 1;
      r.event(RestoreEvent::Type::file_error, it.path, "no recorded copy at the destination — sync it first");
      continue;
    }
    try {
      r.one(it);
    } catch (const Error& e) {
      r.rep.failed += 1;
      r.event(RestoreEvent::Type::file_error, it.path, e.what());
    }
  }
}

void finish(store::Db& db, std::int64_t vol, Restorer& r) {
  auto& rep = r.rep;
  for (const auto& path : store::mark_restored_batch(db, vol, rep.run_id, r.revive)) {
    rep.failed += 1;
    r.event(RestoreEvent::Type::file_error, path, "restored, but the index row could not be flipped back to present");
  }
  rep.revived = static_cast<std::int64_t>(r.revive.size());
  bool clean = rep.failed == 0 && rep.no_copy == 0 && rep.refused_existing == 0;
  rep.status = clean ? store::RunStatus::success : store::RunStatus::partial;
  store::finish_run(db, rep.run_id,
                    {rep.status, clean ? "" : fmt::format("{} failed, {} without a copy, {} left in place", rep.failed,
                                                          rep.no_copy, rep.refused_existing),
                     rep.restored + rep.already_correct, rep.restored});
}

}  // namespace

RestoreReport run_restore(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const RestoreOptions& opts, const RestoreListener& listener) {
  auto& db = st.db();
  auto vol = resolve_volume(cfg, db, volume, ResolveMode::existing);
  RestoreReport rep;
  rep.volume = volume;
  rep.dry_run = opts.dry_run;
  rep.from = pick_source(cfg, volume, opts.from);
  const auto& d = sync::require_local_mirror(cfg, rep.from);
  rep.to = opts.to.empty() ? vol.path.string() : opts.to;
  auto items = load_items(db, vol.row->id, rep.from, volume);
  std::erase_if(items, [&](const RestoreItem& it) { return !matches(it.path, opts.selectors); });
  rep.selected = static_cast<std::int64_t>(items.size());
  if (opts.dry_run) {
    for (const auto& it : items) (it.source.empty() ? rep.no_copy : rep.restored) += 1;
    for (const auto& it : items) rep.bytes += it.source.empty() ? 0 : it.size;
    return rep;
  }
  Fd target = opts.to.empty() ? Fd(::dup(vol.root.get())) : open_target_root(opts.to, opts.in_place, false);
  auto t = dest::open_local_transport(d.root);
  require_marker(*t, volume, d.root);
  rep.run_id = begin_restore(db, vol.row->id, rep.from);
  Restorer r{*t, target.get(), rep.run_id, opts, rep, listener, {}, opts.to.empty()};
  try {
    restore_all(r, items);
    finish(db, vol.row->id, r);
  } catch (const std::exception& e) {
    store::finish_run(db, rep.run_id, {store::RunStatus::failed, e.what(), rep.restored, rep.restored});
    throw;
  }
  return rep;
}

}  // namespace sq::engine
