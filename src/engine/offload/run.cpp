#include "engine/offload/offload.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/offload/internal.hpp"
#include "engine/offload/world.hpp"
#include "engine/volume.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine {

using offload_detail::Candidate;
using offload_detail::RemoveResult;

namespace {

std::vector<std::string> offload_selectors(const std::vector<std::string>& raw) {
  if (raw.empty())
    throw Error(ErrorKind::usage, "name what to offload: one or more paths inside the volume, or `.` for all of it");
  return clean_selectors(raw);
}

bool selected(const std::string& path, const std::string& sel) {
  return sel == "." || path == sel || (path.size() > sel.size() && path.compare(0, sel.size(), sel) == 0 &&
                                       path[sel.size()] == '/');
}

// The subquery runs once per file: CROSS JOIN keeps the written order (SQLite
// never reorders it), so it starts from the few files of that content, never
// from every folder of the volume.
std::vector<Candidate> load_candidates(store::Db& db, std::int64_t volume_id, std::int64_t self) {
  std::string sql = fmt::format(
      "SELECT d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, COALESCE(f.status_changed_run_id, "
      "f.first_seen_run_id), CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN "
      "c.origin_node_id ELSE ?2 END, CASE WHEN c.origin_node_id IS NOT NULL AND c.origin_run_id IS NOT NULL THEN "
      "c.origin_run_id ELSE (SELECT MIN(f2.first_seen_run_id) FROM files f2 CROSS JOIN folders d2 ON d2.id = "
      "f2.folder_id "
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
  if (!v) throw config::unknown_volume(volume, cfg.file);
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

constexpr std::size_t kBatchFiles = 64;
constexpr std::int64_t kBatchBytes = 64LL << 20;

class Remover {
 public:
  Remover(store::Db& db, ResolvedVolume& vol, std::int64_t run, offload_detail::WorldCheck& world,
          const OffloadOptions& o, OffloadReport& rep, ProgressTally& tally)
      : db_(db), vol_(vol), run_(run), world_(world), o_(o), rep_(rep), tally_(tally), buf_(1 << 20) {}

  void add(const Candidate* c) {
    batch_.push_back(c);
    batch_bytes_ += c->size;
    if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes) flush();
  }

  void flush() {
    auto confirmed = confirm(batch_);
    batch_.clear();
    batch_bytes_ = 0;
    if (confirmed.empty()) return;
    std::vector<store::OffloadFlip> intended, removed;
    for (const auto* c : confirmed) intended.push_back({c->gate.path, c->gate.content_id});
    store::record_offload_intents(db_, vol_.row->id, run_, intended);
    for (const auto* c : confirmed)
      if (remove(*c)) removed.push_back({c->gate.path, c->gate.content_id});
    for (const auto& path : store::complete_offload_batch(db_, vol_.row->id, run_, removed, intended)) {
      rep_.errors += 1;
      rep_.drifted.emplace_back(path, "bytes removed but the status flip failed — the next index will report it "
                                      "missing");
    }
  }

 private:
  // The look at every destination right before the unlinks.
  std::vector<const Candidate*> confirm(const std::vector<const Candidate*>& batch) {
    std::vector<offload_detail::WorldCheck::Want> wants;
    for (const auto* c : batch) wants.push_back({&c->gate, c->hash, c->size});
    auto refusals = world_.confirm_batch(wants, run_);
    std::vector<const Candidate*> out;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (refusals[i].empty()) {
        out.push_back(batch[i]);
      } else {
        record_world_refusals(*batch[i], refusals[i]);
        tally_.done(batch[i]->gate.path, batch[i]->size);
      }
    }
    return out;
  }

  void record_world_refusals(const Candidate& c, const std::vector<GateRefusal>& refusals);

  bool remove(const Candidate& c) {
    std::int64_t n = ++unlinks_;
    offload_detail::UnlinkHook hook;
    if (o_.on_unlink) hook = [&](bool after) { o_.on_unlink(n, after); };
    auto r = offload_detail::verify_and_remove(vol_.root.get(), c, buf_, hook);
    tally_.done(c.gate.path, c.size);
    if (r.kind == RemoveResult::Kind::removed) {
      rep_.offloaded += 1;
      rep_.bytes += c.size;
      return true;
    }
    (r.kind == RemoveResult::Kind::drift ? rep_.drift : rep_.errors) += 1;
    rep_.drifted.emplace_back(c.gate.path, r.what);
    return false;
  }

  store::Db& db_;
  ResolvedVolume& vol_;
  std::int64_t run_;
  offload_detail::WorldCheck& world_;
  const OffloadOptions& o_;
  OffloadReport& rep_;
  ProgressTally& tally_;  // every file that passed the gate is done once: confirmed away, kept, or removed
  std::vector<char> buf_;
  std::vector<const Candidate*> batch_;
  std::int64_t batch_bytes_ = 0, unlinks_ = 0;
};

void Remover::record_world_refusals(const Candidate& c, const std::vector<GateRefusal>& refusals) {
  rep_.world_refused = true;
  record_refusals(rep_, o_, c, refusals);
  for (const auto& r : refusals) rep_.satisfied[r.target] -= 1;
}

std::int64_t begin_offload(store::Db& db, std::int64_t volume_id) {
  return store::begin_run_or_throw(db, {store::RunKind::offload, volume_id, ""});
}

// What each target looks like now, then the offline gate; a file passes
// only when every required target passes both. A target-wide refusal from
// the world names the cause to fix first (a disk to mount before evidence
// can matter), so it replaces the target's offline refusal.
std::vector<const Candidate*> judge(OffloadGate& gate, const offload_detail::WorldCheck& world,
                                    const config::Volume& v, const std::vector<const Candidate*>& chosen,
                                    const OffloadOptions& opts, OffloadReport& rep) {
  for (const auto& t : v.offload_requires) rep.satisfied[t] = 0;
  std::vector<const Candidate*> pass;
  for (const auto* c : chosen) {
    auto refusals = gate.judge(c->gate);
    for (const auto& t : v.offload_requires) {
      const auto& w = world.target_refusal(t);
      if (w) {
        std::erase_if(refusals, [&](const GateRefusal& r) { return r.target == t; });
        refusals.push_back(*w);
        rep.world_refused = true;
      } else if (std::none_of(refusals.begin(), refusals.end(), [&](const GateRefusal& r) { return r.target == t; })) {
        rep.satisfied[t] += 1;
      }
    }
    if (refusals.empty()) pass.push_back(c);
    else record_refusals(rep, opts, *c, refusals);
  }
  rep.candidates = static_cast<std::int64_t>(chosen.size());
  return pass;
}

// Confirms, re-checks and removes every file that passed the gate, in
// batches; the progress covers exactly these files.
void remove_passed(store::Db& db, ResolvedVolume& vol, offload_detail::WorldCheck& world, const OffloadOptions& opts,
                   const std::vector<const Candidate*>& pass, OffloadReport& rep, const ProgressListener& listener) {
  std::int64_t bytes = 0;
  for (const auto* c : pass) bytes += c->size;
  ProgressTally tally(listener, "offloading", static_cast<std::int64_t>(pass.size()), bytes);
  Remover remover(db, vol, rep.run_id, world, opts, rep, tally);
  for (const auto* c : pass) remover.add(c);
  remover.flush();
}

void settle_earlier(store::Db& db, ResolvedVolume& vol, OffloadReport& rep) {
  auto settled = settle_interrupted_offloads(db, vol.root.get(), vol.row->id);
  rep.settled_offloaded = settled.offloaded;
  rep.settled_kept = settled.kept;
}

}  // namespace

OffloadReport run_offload(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const OffloadOptions& opts, const ProgressListener& listener) {
  const auto& v = policy(cfg, volume);
  // --older-than is a selector of its own: it applies to the whole volume.
  auto sels = offload_selectors(opts.selectors.empty() && opts.older_than_ns ? std::vector<std::string>{"."}
                                                                           : opts.selectors);
  if (opts.older_than_ns && *opts.older_than_ns <= 0) throw Error(ErrorKind::usage, "--older-than must be positive");
  auto& db = st.db();
  auto vol = resolve_or_record(cfg, db, volume, opts.dry_run);
  OffloadReport rep;
  rep.volume = volume;
  rep.dry_run = opts.dry_run;
  if (!opts.dry_run) rep.run_id = begin_offload(db, vol.row->id);
  try {
    if (!opts.dry_run) settle_earlier(db, vol, rep);
    auto all = load_candidates(db, vol.row->id, st.self_node_id());
    auto chosen = select(all, sels, opts, rep);
    OffloadGate gate(db, vol.row->id, v.offload_requires, v.offload_max_evidence_age_ns,
                     opts.now_ns.value_or(now_ns()));
    offload_detail::WorldCheck world(cfg, db, volume, v.offload_requires, opts.transport);
    auto pass = judge(gate, world, v, chosen, opts, rep);
    if (opts.dry_run) {  // a dry run reads no file: copies are confirmed only by a real run
      rep.offloaded = static_cast<std::int64_t>(pass.size());
      for (const auto* c : pass) rep.bytes += c->size;
      return rep;
    }
    remove_passed(db, vol, world, opts, pass, rep, listener);
    rep.copies_rehashed = world.copies_rehashed();
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
