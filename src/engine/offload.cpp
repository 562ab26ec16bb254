#include "engine/offload.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/volume.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine {

namespace {

struct Candidate {
  GateFile gate;
  Digest hash{};
  std::int64_t size = 0, mtime_ns = 0;
};

std::vector<std::string> clean_selectors(const std::vector<std::string>& raw) {
  if (raw.empty())
    throw Error(ErrorKind::usage, "name what to offload: one or more paths inside the volume, or `.` for all of it");
  std::vector<std::string> out;
  for (auto s : raw) {
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    if (s != "." && !is_clean_relative(s))
      throw Error(ErrorKind::usage, fmt::format("selector \"{}\" must be a path inside the volume (relative, no `..`), "
                                                "or `.`", escape_for_display(s)));
    out.push_back(s);
  }
  return out;
}

bool selected(const std::string& path, const std::string& sel) {
  return sel == "." || path == sel || (path.size() > sel.size() && path.compare(0, sel.size(), sel) == 0 &&
                                       path[sel.size()] == '/');
}

std::vector<Candidate> load_candidates(store::Db& db, std::int64_t volume_id, std::int64_t self) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, COALESCE(f.status_changed_run_id, "
      "f.first_seen_run_id), CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN "
      "c.origin_node_id ELSE ?2 END, CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN "
      "c.origin_run_id ELSE (SELECT MIN(f2.first_seen_run_id) FROM files f2 JOIN folders d2 ON d2.id = f2.folder_id "
      "WHERE f2.content_id = f.content_id AND d2.volume_id = ?1) END FROM files f JOIN folders d ON d.id = f.folder_id "
      "JOIN contents c ON c.id = f.content_id WHERE d.volume_id = ?1 AND f.status = 'present' AND {} "
      "ORDER BY d.path, f.name",
      store::kOutsideReserved);
  store::Stmt st(db, sql);
  st.bind(1, volume_id).bind(2, self);
  std::vector<Candidate> out;
  while (st.step()) {
    Candidate c;
    c.gate = {store::join_path(st.bytes_str(0), st.bytes_str(1)), st.i64(2), st.i64(7), st.i64(8), st.i64(6)};
    c.hash = st.digest(3);
    c.size = st.i64(4);
    c.mtime_ns = st.i64(5);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

// ---- the re-check right before the unlink -----------------------------------

namespace {

struct RemoveResult {
  enum class Kind { removed, drift, error } kind = Kind::removed;
  std::string what;
};

RemoveResult drift(std::string what) { return {RemoveResult::Kind::drift, std::move(what)}; }

bool same_object(const struct stat& a, const struct stat& b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; }

// Hashes the open handle; the bytes judged are the bytes that get unlinked.
std::optional<Digest> hash_handle(int fd, std::vector<char>& buf) {
  Hasher h;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return h.finalize();
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
}

RemoveResult verify_and_remove(int root, const Candidate& c, std::vector<char>& buf) {
  auto [folder, name] = store::split_path(c.gate.path);
  int pfd = folder.empty() ? ::dup(root) : open_beneath(root, folder, O_RDONLY | O_DIRECTORY);
  if (pfd < 0) return drift(fmt::format("parent folder unusable ({}) — a symlink or a file in the way?",
                                        std::strerror(folder.empty() ? errno : -pfd)));
  Fd parent(pfd);
  struct stat before {}, opened {}, after {};
  if (::fstatat(pfd, name.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) return drift("missing on disk");
  if (!S_ISREG(before.st_mode)) return drift("no longer a regular file (a symlink or something else is there)");
  Fd file(::openat(pfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!file || ::fstat(file.get(), &opened) != 0 || !same_object(before, opened))
    return drift("replaced between check and open");
  if (opened.st_size != c.size || mtime_ns_of(opened) != c.mtime_ns)
    return drift(fmt::format("size/mtime differ from the index ({} bytes now, {} indexed)", opened.st_size, c.size));
  auto h = hash_handle(file.get(), buf);
  if (!h) return {RemoveResult::Kind::error, std::strerror(errno)};
  if (*h != c.hash) return drift("content differs from the index (BLAKE3 mismatch)");
  if (::fstatat(pfd, name.c_str(), &after, AT_SYMLINK_NOFOLLOW) != 0 || !same_object(before, after) ||
      after.st_size != opened.st_size || mtime_ns_of(after) != mtime_ns_of(opened))
    return drift("changed during verification");
  if (::unlinkat(pfd, name.c_str(), 0) != 0) return {RemoveResult::Kind::error, std::strerror(errno)};
  return {};
}

}  // namespace

// ---- selection and judging -----------------------------------------------------

namespace {

void record_refusals(OffloadReport& rep, const OffloadOptions& o, const Candidate& c,
                     const std::vector<GateRefusal>& refusals) {
  rep.not_durable += 1;
  for (const auto& r : refusals) {
    auto it = std::find_if(rep.refusals.begin(), rep.refusals.end(),
                           [&](const RefusalGroup& g) { return g.target == r.target && g.cause == r.cause; });
    if (it == rep.refusals.end()) {
      rep.refusals.push_back({r.target, r.cause, 0, c.gate.path, r.detail, next_step(r.cause, rep.volume, r.target)});
      it = rep.refusals.end() - 1;
    }
    it->files += 1;
    if (o.per_file) rep.per_file.emplace_back(c.gate.path, r);
  }
}

std::vector<const Candidate*> select(const std::vector<Candidate>& all, const std::vector<std::string>& sels,
                                     const OffloadOptions& o, OffloadReport& rep) {
  std::vector<bool> matched(sels.size(), false);
  std::vector<const Candidate*> out;
  std::int64_t cutoff = o.older_than_ns ? o.now_ns.value_or(now_ns()) - *o.older_than_ns : 0;
  for (const auto& c : all) {
    bool any = false;
    for (std::size_t i = 0; i < sels.size(); ++i)
      if (selected(c.gate.path, sels[i])) any = matched[i] = true;
    if (any && (!o.older_than_ns || c.mtime_ns < cutoff)) out.push_back(&c);
  }
  for (std::size_t i = 0; i < sels.size(); ++i)
    if (!matched[i]) rep.unmatched_selectors.push_back(sels[i]);
  return out;
}

}  // namespace

// ---- the run ---------------------------------------------------------------------

namespace {

const config::Volume& policy(const config::Config& cfg, const std::string& volume) {
  const auto* v = cfg.volume(volume);
  if (!v) throw Error(ErrorKind::not_found, fmt::format("unknown volume \"{}\" (declare it in {})",
                                                        escape_for_display(volume), cfg.file.string()));
  if (v->offload_requires.empty())
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" has no offload_requires — offload refuses to delete "
                                                "without an explicit list of required targets", volume));
  return *v;
}

ResolvedVolume resolve_or_record(const config::Config& cfg, store::Db& db, const std::string& volume, bool dry) {
  try {
    return resolve_volume(cfg, db, volume, ResolveMode::existing);
  } catch (const Error& e) {
    auto row = store::find_volume(db, volume);
    if (!dry && e.kind() == ErrorKind::refused)
      store::record_terminal_run(db, {store::RunKind::offload, row ? std::optional(row->id) : std::nullopt, ""},
                                 store::RunStatus::refused, e.what());
    throw;
  }
}

void flush_flips(store::Db& db, std::int64_t vol, std::int64_t run, std::vector<store::OffloadFlip>& flips,
                 OffloadReport& rep) {
  for (const auto& path : store::mark_offloaded_batch(db, vol, run, flips)) {
    rep.errors += 1;
    rep.drifted.emplace_back(path, "bytes removed but the status flip failed — the next index will report it missing");
  }
  flips.clear();
}

void remove_passing(store::Db& db, ResolvedVolume& vol, std::int64_t run, const std::vector<const Candidate*>& pass,
                    OffloadReport& rep) {
  std::vector<char> buf(1 << 20);
  std::vector<store::OffloadFlip> flips;
  for (const auto* c : pass) {
    auto r = verify_and_remove(vol.root.get(), *c, buf);
    if (r.kind == RemoveResult::Kind::removed) {
      rep.offloaded += 1;
      rep.bytes += c->size;
      flips.push_back({c->gate.path, c->gate.content_id});
      if (flips.size() >= 512) flush_flips(db, vol.row->id, run, flips, rep);
      continue;
    }
    (r.kind == RemoveResult::Kind::drift ? rep.drift : rep.errors) += 1;
    rep.drifted.emplace_back(c->gate.path, r.what);
  }
  flush_flips(db, vol.row->id, run, flips, rep);
}

std::int64_t begin_offload(store::Db& db, std::int64_t volume_id) {
  return store::begin_run_or_throw(db, {store::RunKind::offload, volume_id, ""});
}

}  // namespace

OffloadReport run_offload(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const OffloadOptions& opts) {
  const auto& v = policy(cfg, volume);
  // --older-than is a selector of its own: it applies to the whole volume.
  auto sels = clean_selectors(opts.selectors.empty() && opts.older_than_ns ? std::vector<std::string>{"."}
                                                                           : opts.selectors);
  if (opts.older_than_ns && *opts.older_than_ns <= 0) throw Error(ErrorKind::usage, "--older-than must be positive");
  auto& db = st.db();
  auto vol = resolve_or_record(cfg, db, volume, opts.dry_run);
  OffloadReport rep;
  rep.volume = volume;
  rep.dry_run = opts.dry_run;
  if (!opts.dry_run) rep.run_id = begin_offload(db, vol.row->id);
  try {
    auto all = load_candidates(db, vol.row->id, st.self_node_id());
    auto chosen = select(all, sels, opts, rep);
    OffloadGate gate(db, vol.row->id, v.offload_requires, v.offload_max_evidence_age_ns,
                     opts.now_ns.value_or(now_ns()));
    for (const auto& t : v.offload_requires) rep.satisfied[t] = 0;
    std::vector<const Candidate*> pass;
    for (const auto* c : chosen) {
      auto refusals = gate.judge(c->gate);
      for (const auto& t : v.offload_requires)
        if (std::none_of(refusals.begin(), refusals.end(), [&](const GateRefusal& r) { return r.target == t; }))
          rep.satisfied[t] += 1;
      if (refusals.empty()) pass.push_back(c);
      else record_refusals(rep, opts, *c, refusals);
    }
    rep.candidates = static_cast<std::int64_t>(chosen.size());
    if (opts.dry_run) {
      rep.offloaded = static_cast<std::int64_t>(pass.size());
      for (const auto* c : pass) rep.bytes += c->size;
      return rep;
    }
    remove_passing(db, vol, rep.run_id, pass, rep);
  } catch (const std::exception& e) {
    store::finish_run(db, rep.run_id, {store::RunStatus::failed, e.what(), rep.offloaded, rep.offloaded});
    throw;
  }
  rep.status = rep.errors ? store::RunStatus::partial : store::RunStatus::success;
  store::finish_run(db, rep.run_id, {rep.status, rep.errors ? fmt::format("{} error(s)", rep.errors) : "",
                                     rep.offloaded, rep.offloaded});
  return rep;
}

}  // namespace sq::engine
