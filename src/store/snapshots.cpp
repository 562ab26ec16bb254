#include "store/snapshots.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <stdio.h>

#include <algorithm>
#include <charconv>

#include "core/error.hpp"
#include "core/private_files.hpp"
#include "core/process.hpp"
#include "core/text.hpp"

namespace sq::store {

namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(fmt::format("cannot open {} to flush it", p.string()), errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) fail_errno(fmt::format("cannot flush {}", p.string()), err);
}

std::string uri_escape(const std::string& path) {
  std::string out;
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) out += fmt::format("%{:02X}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

fs::path default_backup_path(const fs::path& dir, std::int64_t at_ns) {
  return dir / fmt::format("index-{}.db", compact_utc(at_ns));
}

namespace {

// A snapshot is written as .<final name>.partial-<pid>-<start ticks> and
// renamed when complete, so one cut short (a killed process) never looks
// like a snapshot: it is not counted among the kept ones, not offered to
// `db restore`, and the next backup removes it with SQLite's journal.
constexpr std::string_view kPartial = ".partial-";

fs::path partial_path(const fs::path& to) {
  auto me = self_identity();
  return to.parent_path() / fmt::format(".{}{}{}-{}", to.filename().string(), kPartial, me.pid, me.start_ticks);
}

// True when `name` is a partial snapshot (or its journal) whose writer is
// gone for sure. One that may still be running is left alone.
bool abandoned_partial(const std::string& name) {
  auto at = name.rfind(kPartial);
  if (name.empty() || name[0] != '.' || at == std::string::npos) return false;
  std::string_view owner(name);
  owner.remove_prefix(at + kPartial.size());
  if (owner.ends_with("-journal")) owner.remove_suffix(8);
  std::int64_t pid = 0, start = 0;
  auto [end, ec] = std::from_chars(owner.data(), owner.data() + owner.size(), pid);
  if (ec != std::errc() || pid <= 0 || end == owner.data() + owner.size() || *end != '-') return false;
  auto [end2, ec2] = std::from_chars(end + 1, owner.data() + owner.size(), start);
  if (ec2 != std::errc() || end2 != owner.data() + owner.size()) return false;
  auto ticks = process_start_ticks(pid);
  return !ticks || *ticks != start;
}

bool is_routine_backup_name(const std::string& name);

// Removes partial snapshots of dead writers, and what older versions left
// when killed: a routine snapshot whose rollback journal is still beside
// it was never finished.
void remove_litter(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (!e.is_regular_file(ec) || e.is_symlink(ec)) continue;
    if (abandoned_partial(name)) {
      fs::remove(e.path(), ec);
    } else if (name.ends_with("-journal") && is_routine_backup_name(name.substr(0, name.size() - 8))) {
      fs::remove(dir / name.substr(0, name.size() - 8), ec);
      fs::remove(e.path(), ec);
    }
  }
}

}  // namespace

void backup_to(Db& db, const fs::path& to) {
  std::error_code ec;
  if (fs::exists(to, ec))
    throw Error(ErrorKind::refused, fmt::format("{} already exists — choose another --to path", to.string()));
  create_private_directories(to.parent_path(), ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {} — check permissions",
                                                 to.parent_path().string(), ec.message()));
  remove_litter(to.parent_path());
  auto partial = partial_path(to);
  // VACUUM INTO writes into an empty file as well; made here it is 0600
  // whatever the umask, and so is the journal SQLite keeps beside it.
  if (!create_private_file(partial))
    throw Error(ErrorKind::io, fmt::format("{} is in the way — remove it and retry", partial.string()));
  try {
    db.execute("VACUUM INTO ?", {Value{partial.string()}});
    fsync_path(partial, false);
    if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0)
      fail_errno(fmt::format("cannot rename the finished snapshot to {}", to.string()), errno);
  } catch (...) {
    fs::remove(partial, ec);
    fs::remove(partial.string() + "-journal", ec);
    throw;
  }
  fsync_path(to.parent_path(), true);
}

namespace {

// Exactly the names squirrel makes: index-yyyymmddThhmmss.mmmZ.db from
// `db backup`, and index-yyyymmddThhmmss.mmmZ-run-<id>.db taken along by sync.
// Anything else in the directory (a user's "index-old.db", pre-migration
// snapshots) is not ours to delete.
bool is_routine_backup_name(const std::string& name) {
  static constexpr std::string_view kShape = "index-########T######.###Z";
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (name.size() < kShape.size() + 3 || !name.ends_with(".db")) return false;
  for (std::size_t i = 0; i < kShape.size(); ++i)
    if (kShape[i] == '#' ? !digit(name[i]) : name[i] != kShape[i]) return false;
  std::string_view rest(name.data() + kShape.size(), name.size() - kShape.size() - 3);
  if (rest.empty()) return true;
  if (!rest.starts_with("-run-") || rest.size() == 5) return false;
  return std::all_of(rest.begin() + 5, rest.end(), digit);
}

}  // namespace

std::vector<fs::path> rotate_backups(const fs::path& dir, int keep) {
  std::vector<fs::path> routine, removed;
  if (keep <= 0) return removed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (e.is_regular_file(ec) && !e.is_symlink(ec) && is_routine_backup_name(name)) routine.push_back(e.path());
  }
  std::sort(routine.begin(), routine.end());  // names sort by time
  while (routine.size() > static_cast<std::size_t>(keep)) {
    fs::remove(routine.front(), ec);
    if (!ec) removed.push_back(routine.front());
    routine.erase(routine.begin());
  }
  return removed;
}

namespace {

// Runs one check. On a damaged file the check itself can stop with
// SQLITE_CORRUPT part-way (foreign_key_check reads every row); that is a
// finding to report next to the others, not a reason to lose them. Any other
// failure (busy, I/O) is not a verdict on the file and is rethrown.
template <typename Row>
void run_check(Db& db, const char* sql, std::vector<std::string>& out, Row row) {
  try {
    Stmt st(db, sql);
    while (st.step()) row(st);
  } catch (const Error&) {
    int code = sqlite3_errcode(db.handle()) & 0xff;
    if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB) throw;
    // SQLite's own words: the error's advice (run `db check`) is this check.
    out.push_back(fmt::format("{} stopped: {}", sql, sqlite3_errmsg(db.handle())));
  }
}

}  // namespace

std::vector<std::string> integrity_problems(Db& db) {
  std::vector<std::string> out;
  run_check(db, "PRAGMA integrity_check", out, [&](const Stmt& st) {
    if (st.text(0) != "ok") out.push_back(st.text(0));
  });
  run_check(db, "PRAGMA foreign_key_check", out, [&](const Stmt& st) {
    out.push_back(fmt::format("foreign key violation: table {} row {} references {}", st.text(0), st.i64(1),
                              st.text(2)));
  });
  return out;
}

SnapshotInfo inspect_snapshot(const fs::path& snapshot) {
  SnapshotInfo info;
  sqlite3* raw = nullptr;
  std::string uri = "file:" + uri_escape(fs::absolute(snapshot).string()) + "?immutable=1";
  int rc = sqlite3_open_v2(uri.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  auto close = [&] { sqlite3_close_v2(raw); };
  if (rc != SQLITE_OK) {
    info.problem = sqlite3_errstr(rc);
    close();
    return info;
  }
  sqlite3_stmt* st = nullptr;
  rc = sqlite3_prepare_v2(raw, "SELECT COALESCE(MAX(version),0) FROM schema_version", -1, &st, nullptr);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) info.schema_version = sqlite3_column_int(st, 0);
  else info.problem = fmt::format("not a squirrel database ({})", sqlite3_errmsg(raw));
  sqlite3_finalize(st);
  if (info.problem.empty()) {
    rc = sqlite3_prepare_v2(raw, "PRAGMA quick_check", -1, &st, nullptr);
    bool ok = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "ok";
    sqlite3_finalize(st);
    info.intact = ok;
    if (!ok) info.problem = "integrity check failed";
  }
  close();
  return info;
}

namespace {

struct Move {
  fs::path from, to;
};

// The live database is squirrel's own file: owner-only, whatever mode the
// snapshot it comes from has (fs::copy_file would copy that mode).
void copy_privately(const fs::path& from, const fs::path& to) {
  auto fail_copy = [&](int err) {
    throw Error(ErrorKind::io, fmt::format("{} — check space and permissions",
                                           errno_message("cannot copy " + from.string(), err)));
  };
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail_copy(errno);
  Fd out = create_private_file(to);
  if (!out) throw Error(ErrorKind::io, fmt::format("{} is in the way — remove it and retry", to.string()));
  std::error_code ec;
  auto fail_write = [&](int err) {
    fs::remove(to, ec);
    fail_copy(err);
  };
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_write(errno);
    if (n == 0) return;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out.get(), buffer.data() + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail_write(errno);
      done += w;
    }
  }
}

void undo(const std::vector<Move>& done) {
  std::error_code ec;
  for (auto it = done.rbegin(); it != done.rend(); ++it) fs::rename(it->to, it->from, ec);
}

}  // namespace

RestoreResult restore_snapshot(const fs::path& snapshot, const fs::path& live) {
  auto stamp = std::to_string(now_ns());
  fs::path staged = live.string() + ".restore-" + stamp;
  std::error_code ec;
  copy_privately(snapshot, staged);
  fsync_path(staged, false);
  RestoreResult r{live.string() + ".pre-restore-" + stamp};
  std::vector<Move> done;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path from = live.string() + suffix;
    if (!fs::exists(from, ec)) continue;
    fs::path to = r.displaced.string() + suffix;
    fs::rename(from, to, ec);
    if (ec) {
      undo(done);
      fs::remove(staged, ec);
      throw Error(ErrorKind::io, fmt::format("cannot move {} aside: {} — nothing was changed", from.string(),
                                             ec.message()));
    }
    done.push_back({from, to});
  }
  if (done.empty()) r.displaced.clear();  // there was no live database to keep
  fs::rename(staged, live, ec);
  if (ec) {
    undo(done);
    throw Error(ErrorKind::io, fmt::format("cannot put the snapshot in place: {} — the old database was put back",
                                           ec.message()));
  }
  fsync_path(live.parent_path(), true);
  return r;
}

}  // namespace sq::store
