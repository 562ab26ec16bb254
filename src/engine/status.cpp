#include "engine/status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "core/fsinfo.hpp"
#include "core/reserved.hpp"
#include "core/text.hpp"
#include "store/evidence.hpp"
#include "engine/index.hpp"
#include "engine/volume.hpp"
#include "store/volumes.hpp"
#include "store/files.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine {

std::string_view to_string(Light l) {
  switch (l) {
    case Light::neutral: return "neutral";
    case Light::green: return "green";
    case Light::amber: return "amber";
    case Light::red: return "red";
  }
  return "red";
}

int exit_code_for(Light l) { return l == Light::red ? 2 : l == Light::amber ? 1 : 0; }

std::string_view to_string(TargetRole r) {
  switch (r) {
    case TargetRole::sync: return "sync";
    case TargetRole::offload: return "offload";
    case TargetRole::both: return "sync+offload";
  }
  return "sync";
}

std::string_view to_string(TargetKind k) {
  switch (k) {
    case TargetKind::destination: return "destination";
    case TargetKind::node: return "node";
    case TargetKind::unknown: return "unknown";
  }
  return "unknown";
}

std::string_view to_string(SyncState s) {
  switch (s) {
    case SyncState::alarm: return "alarm";
    case SyncState::refused: return "refused";
    case SyncState::needs_init: return "needs-init";
    case SyncState::failed: return "failed";
    case SyncState::partial: return "partial";
    case SyncState::offload_only: return "—";
    case SyncState::never_synced: return "never-synced";
    case SyncState::stalled: return "stalled";
    case SyncState::late: return "late";
    case SyncState::ok: return "ok";
  }
  return "ok";
}

// ---- reusable pieces ----------------------------------------------------

namespace {

// The smallest value noted per content id. Content ids are dense, so a
// plain array indexed by id serves when the database's ids are not far
// more than the rows to note (no hashing, no allocation per content); a
// volume that is a small part of a large database gets a hash map.
class SmallestPerContent {
 public:
  SmallestPerContent(store::Db& db, std::size_t expected) {
    auto top = static_cast<std::size_t>(db.query_i64("SELECT COALESCE(MAX(id), 0) FROM contents").value_or(0));
    if (top <= 4 * expected + 4096) dense_.assign(top + 1, kNone);
    else sparse_.reserve(expected);
  }
  void note(std::int64_t content, std::int64_t value) {
    auto i = static_cast<std::size_t>(content);
    if (i < dense_.size()) dense_[i] = std::min(dense_[i], value);
    else if (auto [it, fresh] = sparse_.emplace(content, value); !fresh) it->second = std::min(it->second, value);
  }
  std::int64_t of(std::int64_t content) const {
    auto i = static_cast<std::size_t>(content);
    return i < dense_.size() ? dense_[i] : sparse_.at(content);
  }

 private:
  static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> dense_;
  std::unordered_map<std::int64_t, std::int64_t> sparse_;
};

}  // namespace

std::vector<PresentFile> load_present_files(store::Db& db, std::int64_t volume_id, std::int64_t self_node_id,
                                            bool with_paths, std::int64_t* reserved_present) {
  // One pass over every row of the volume (any status): the introduction
  // run of a content is the smallest first_seen over all its rows here, and
  // gathering it on the way is far cheaper than a correlated subquery per
  // present row. Origin rule of data-model §6.1, as the offload gate uses it:
  // the recorded origin when both halves are set, else (self, introduction).
  // Reserved names are judged here by core/reserved.hpp, the rule that
  // store::kOutsideReserved states in SQL: its three GLOBs per row cost more
  // than the rest of this query.
  store::Stmt st(db,
                 "SELECT f.content_id, f.first_seen_run_id, f.status = 'present', "
                 "COALESCE(f.status_changed_run_id, f.first_seen_run_id), c.size_bytes, c.origin_node_id, "
                 "c.origin_run_id, d.path, f.name FROM files f JOIN folders d ON d.id = f.folder_id JOIN contents c "
                 "ON c.id = f.content_id WHERE d.volume_id = ?1");
  st.bind(1, volume_id);
  // The root folder's aggregate counts the present files: size everything once.
  auto expected = static_cast<std::size_t>(
      db.query_i64("SELECT file_count FROM folders WHERE volume_id = ? AND parent_id IS NULL",
                   {store::Value{volume_id}})
          .value_or(0));
  SmallestPerContent introduced(db, expected);  // content -> smallest first_seen
  std::vector<PresentFile> out;
  out.reserve(expected);
  std::vector<std::size_t> local;  // rows whose origin is (self, introduction)
  local.reserve(expected);
  if (reserved_present) *reserved_present = 0;
  while (st.step()) {
    std::int64_t content = st.i64(0), first_seen = st.i64(1);
    introduced.note(content, first_seen);
    if (st.i64(2) == 0) continue;  // not present
    auto folder = st.bytes(7), name = st.bytes(8);
    if (reserved_file(folder, name)) {
      if (reserved_present) *reserved_present += 1;
      continue;
    }
    PresentFile p;
    p.gate.content_id = content;
    p.gate.appeared_run = st.i64(3);
    p.size = st.i64(4);
    if (!st.is_null(5) && !st.is_null(6)) {
      p.gate.origin_node = st.i64(5);
      p.gate.origin_run = st.i64(6);
    } else {
      p.gate.origin_node = self_node_id;
      local.push_back(out.size());
    }
    if (with_paths) p.gate.path = store::join_path(std::string(folder), std::string(name));
    out.push_back(std::move(p));
  }
  for (auto i : local) out[i].gate.origin_run = introduced.of(out[i].gate.content_id);
  return out;
}

std::vector<store::OriginMax> origin_maxima_of(const std::vector<PresentFile>& files) {
  std::map<std::int64_t, std::int64_t> best;
  for (const auto& f : files) {
    auto [it, fresh] = best.emplace(f.gate.origin_node, f.gate.origin_run);
    if (!fresh) it->second = std::max(it->second, f.gate.origin_run);
  }
  std::vector<store::OriginMax> out;
  for (const auto& [node, run] : best) out.push_back({node, run});
  return out;
}

bool vector_covers(const std::vector<store::Component>& vector, const std::vector<store::OriginMax>& present) {
  return std::all_of(present.begin(), present.end(), [&](const store::OriginMax& m) {
    return std::any_of(vector.begin(), vector.end(), [&](const store::Component& c) {
      return c.origin_node_id == m.node_id && c.origin_run_id >= m.run_id;
    });
  });
}

// ---- reading runs -------------------------------------------------------

namespace {

// The last finished run of a kind for the volume (and destination).
std::optional<RunBrief> last_finished(store::Db& db, std::string_view kind, std::int64_t volume_id,
                                      const std::string& destination) {
  store::Stmt st(db,
                 "SELECT id, status, COALESCE(ended_at_ns, started_at_ns), COALESCE(error, '') FROM runs "
                 "WHERE kind = ? AND volume_id = ? AND COALESCE(destination, '') = ? AND status != 'running' "
                 "ORDER BY id DESC LIMIT 1");
  st.bind(1, std::string(kind)).bind(2, volume_id).bind(3, destination);
  if (!st.step()) return std::nullopt;
  return RunBrief{st.i64(0), store::parse_run_status(st.text(1)).value_or(store::RunStatus::failed), st.i64(2),
                  st.text(3)};
}

bool sync_ever_succeeded(store::Db& db, std::int64_t volume_id, const std::string& destination) {
  return db
             .query_i64("SELECT EXISTS(SELECT 1 FROM runs WHERE kind = 'sync' AND volume_id = ? AND destination = ? "
                        "AND status = 'success')",
                        {store::Value{volume_id}, store::Value{destination}})
             .value_or(0) != 0;
}

// What the last index that walked the whole volume (success or partial)
// reported under reserved names.
std::int64_t reserved_reported(store::Db& db, std::int64_t volume_id) {
  store::Stmt st(db,
                 "SELECT a.note FROM runs_audit a WHERE a.transition = ?2 AND a.run_id = (SELECT max(id) FROM runs "
                 "WHERE kind = 'index' AND volume_id = ?1 AND status IN ('success','partial'))");
  st.bind(1, volume_id).bind(2, std::string(kReservedNamesTransition));
  if (!st.step() || st.is_null(0)) return 0;
  try {
    return std::stoll(st.text(0));
  } catch (const std::exception&) {
    return 1;  // unreadable, but something was reported: never green
  }
}

bool any_index_succeeded(store::Db& db, std::int64_t volume_id) {
  return db
             .query_i64("SELECT EXISTS(SELECT 1 FROM runs WHERE kind = 'index' AND volume_id = ? AND status IN "
                        "('success','partial'))",
                        {store::Value{volume_id}})
             .value_or(0) != 0;
}

}  // namespace

// ---- one target ---------------------------------------------------------

namespace {

// What one volume's rows are judged against, gathered once.
struct VolumeFacts {
  const config::Volume& cfg;
  std::optional<FsInfo> fs;                // the volume's filesystem; empty when it cannot be examined
  store::Db* db = nullptr;                 // null: no index database
  std::optional<std::int64_t> volume_id;   // empty: never indexed into this database
  std::vector<store::OriginMax> present;   // origin maxima of the present set
  std::int64_t present_files = 0;
  const std::vector<store::Alarm>& alarms;
  std::int64_t now = 0;
  const config::Config* config = nullptr;  // the whole config: destinations by name
};

const store::Alarm* alarm_on(const std::vector<store::Alarm>& alarms, const std::string& target) {
  for (const auto& a : alarms)
    if (a.destination == target) return &a;
  return nullptr;
}

SyncState state_of_finished(const VolumeFacts& v, const TargetStatus& t) {
  const auto& last = *t.last_sync;
  switch (last.status) {
    case store::RunStatus::refused:
      return last.error.find("--init") != std::string::npos && !sync_ever_succeeded(*v.db, *v.volume_id, t.name)
                 ? SyncState::needs_init
                 : SyncState::refused;
    case store::RunStatus::failed:
    case store::RunStatus::aborted:
    case store::RunStatus::running:
      return SyncState::failed;
    case store::RunStatus::partial:
      return SyncState::partial;
    case store::RunStatus::success:
      break;
  }
  if (t.role == TargetRole::offload || !v.cfg.sync_every_ns) return SyncState::ok;
  std::int64_t age = v.now - last.at_ns, cadence = *v.cfg.sync_every_ns;
  return age > 3 * cadence ? SyncState::stalled : age > cadence ? SyncState::late : SyncState::ok;
}

SyncState sync_state(const VolumeFacts& v, const TargetStatus& t) {
  if (alarm_on(v.alarms, t.name)) return SyncState::alarm;
  if (t.last_sync) return state_of_finished(v, t);
  return t.role == TargetRole::offload ? SyncState::offload_only : SyncState::never_synced;
}

Light light_of(SyncState s) {
  switch (s) {
    case SyncState::alarm:
    case SyncState::refused:
    case SyncState::failed:
    case SyncState::stalled:
      return Light::red;
    case SyncState::needs_init:
    case SyncState::partial:
    case SyncState::never_synced:
    case SyncState::late:
      return Light::amber;
    case SyncState::offload_only:
      return Light::neutral;
    case SyncState::ok:
      return Light::green;
  }
  return Light::red;
}

// Whether a local destination already holds this volume (its marker is
// there): a first sync to it needs no --init. Other kinds are not looked at.
bool holds_volume(const VolumeFacts& v, const std::string& target) {
  const auto* d = v.config ? v.config->destination(target) : nullptr;
  if (!d || d->type != "local") return true;
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(d->root) / v.cfg.name / kMarkerName, ec);
}

std::string sync_reason(const VolumeFacts& v, const TargetStatus& t) {
  const std::string& vol = v.cfg.name;
  auto run = [&] { return t.last_sync ? fmt::format("run {}", t.last_sync->id) : std::string(); };
  auto err = [&] { return t.last_sync && !t.last_sync->error.empty() ? ": " + t.last_sync->error : std::string(); };
  switch (t.state) {
    case SyncState::alarm:
      return fmt::format("alarm latched on {}: {} — run `squirrel verify {}`, or `squirrel verify ack {}` once you "
                         "have looked", t.name, alarm_on(v.alarms, t.name)->detail, t.name, t.name);
    case SyncState::refused: return fmt::format("the last sync to {} ({}) was refused{}", t.name, run(), err());
    case SyncState::needs_init:
      return fmt::format("{} was never initialised — run `squirrel sync {} --to {} --init`", t.name, vol, t.name);
    case SyncState::failed: return fmt::format("the last sync to {} ({}) failed{}", t.name, run(), err());
    case SyncState::partial: return fmt::format("the last sync to {} ({}) was partial{}", t.name, run(), err());
    case SyncState::never_synced:
      return fmt::format("never synced to {} — run `squirrel sync {} --to {}{}`", t.name, vol, t.name,
                         holds_volume(v, t.name) ? "" : " --init");
    case SyncState::stalled:
    case SyncState::late:
      return fmt::format("the last sync to {} was {} ago, sync_every is {} — run `squirrel sync {} --to {}`", t.name,
                         format_duration_ns(v.now - t.last_sync->at_ns), format_duration_ns(*v.cfg.sync_every_ns),
                         vol, t.name);
    case SyncState::offload_only:
    case SyncState::ok:
      break;
  }
  return "";
}

}  // namespace

namespace {

EvidenceStatus evidence_of(const std::vector<store::Component>& vector, std::optional<std::int64_t> max_age,
                           std::int64_t now) {
  EvidenceStatus e;
  e.components = static_cast<std::int64_t>(vector.size());
  e.max_age_ns = max_age;
  std::set<std::string> methods;
  for (const auto& c : vector) {
    methods.insert(c.method ? std::string(store::to_string(*c.method)) : "unknown");
    if (!c.verified_at_ns) e.age_unknown = true;
    else e.oldest_verified_at_ns = std::min(e.oldest_verified_at_ns.value_or(*c.verified_at_ns), *c.verified_at_ns);
  }
  e.methods.assign(methods.begin(), methods.end());
  if (e.age_unknown) e.oldest_verified_at_ns.reset();
  e.stale = e.components > 0 && max_age && (e.age_unknown || *e.oldest_verified_at_ns < now - *max_age);
  return e;
}

// The durability rules of the header; only asked while files are present.
void judge_durability(const VolumeFacts& v, TargetStatus& t) {
  const std::string& vol = v.cfg.name;
  auto raise = [&](Light l, std::string why) {
    t.light = std::max(t.light, l);
    t.reasons.push_back(std::move(why));
  };
  bool first_sync_pending = t.state == SyncState::never_synced || t.state == SyncState::needs_init;
  if (t.evidence.components == 0) {
    if (t.role == TargetRole::both)
      raise(Light::red, fmt::format("offload requires {}, which holds no evidence for {} yet — run `squirrel sync {} "
                                    "--to {}{}`", t.name, vol, vol, t.name, holds_volume(v, t.name) ? "" : " --init"));
    else if (t.role == TargetRole::offload)
      raise(Light::red, fmt::format("offload requires {}, which holds no evidence for {} yet — add it to the sync_to "
                                    "of {} and run `squirrel sync {} --to {}`", t.name, vol, vol, vol, t.name));
    else if (!first_sync_pending)
      raise(Light::amber, fmt::format("{} holds no evidence for {} — run `squirrel sync {} --to {}`", t.name, vol, vol,
                                      t.name));
  } else if (!*t.durable) {
    raise(Light::amber, fmt::format("files indexed since the last sync to {} are not covered yet — run `squirrel sync "
                                    "{} --to {}`", t.name, vol, t.name));
  }
  if (t.evidence.stale)
    raise(Light::amber,
          t.evidence.age_unknown
              ? fmt::format("evidence on {} was never verified — run `squirrel verify {}`", t.name, t.name)
              : fmt::format("evidence on {} is {} old, older than offload_max_evidence_age {} — run `squirrel verify "
                            "{}`", t.name, format_duration_ns(v.now - *t.evidence.oldest_verified_at_ns),
                            format_duration_ns(*t.evidence.max_age_ns), t.name));
}

std::optional<FsInfo> probe_fs(const std::filesystem::path& path) {
  try {
    return fs_info(path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// What the disk under a local destination says about its copies of this
// volume; the rules are in the header.
void judge_disk(const config::Destination& d, const VolumeFacts& v, TargetStatus& t) {
  auto fs = probe_fs(std::filesystem::path(d.root) / v.cfg.name);
  if (!fs) return;
  if (fs->is_volatile) {
    t.volatile_fs = fs->type;
    if (t.durable) t.durable = false;
    bool required = t.role != TargetRole::sync;
    t.light = std::max(t.light, required ? Light::red : Light::amber);
    t.reasons.push_back(fmt::format("{} is on {}, which does not survive a reboot — its copies never count as "
                                    "durable; if a disk belongs at {}, mount it, otherwise point {} at a disk",
                                    t.name, fs->type, escape_for_display(d.root), t.name));
  } else if (v.fs && same_filesystem(*v.fs, *fs)) {
    t.warnings.push_back(fmt::format("{} is on the same filesystem ({}) as {} — its copies survive a deleted file "
                                     "but not a dead disk; add a destination on another disk",
                                     t.name, fs->type, v.cfg.name));
  }
}

TargetStatus target_status(const config::Config& cfg, const VolumeFacts& v, const std::string& name,
                           TargetRole role) {
  TargetStatus t;
  t.name = name;
  t.role = role;
  t.kind = cfg.destination(name) ? TargetKind::destination : cfg.node(name) ? TargetKind::node : TargetKind::unknown;
  std::vector<store::Component> vector;
  if (v.volume_id) {
    t.last_sync = last_finished(*v.db, "sync", *v.volume_id, name);
    vector = store::vector_of(*v.db, *v.volume_id, name);
  }
  t.state = sync_state(v, t);
  t.light = light_of(t.state);
  if (auto why = sync_reason(v, t); !why.empty()) t.reasons.push_back(std::move(why));
  t.evidence = evidence_of(vector, v.cfg.offload_max_evidence_age_ns, v.now);
  if (v.present_files > 0) {
    t.durable = vector_covers(vector, v.present);
    judge_durability(v, t);
  }
  if (const auto* d = cfg.destination(name); d && d->has_local_root()) judge_disk(*d, v, t);
  return t;
}

}  // namespace

// ---- one volume ---------------------------------------------------------

namespace {

// sync_to first, then offload_requires, each name once.
std::vector<std::pair<std::string, TargetRole>> targets_of(const config::Volume& v) {
  std::vector<std::pair<std::string, TargetRole>> out;
  for (const auto& name : v.sync_to) {
    bool required = std::find(v.offload_requires.begin(), v.offload_requires.end(), name) != v.offload_requires.end();
    if (std::none_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; }))
      out.emplace_back(name, required ? TargetRole::both : TargetRole::sync);
  }
  for (const auto& name : v.offload_requires)
    if (std::none_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; }))
      out.emplace_back(name, TargetRole::offload);
  return out;
}

// One pass with a prepared gate: what `offload <volume> .` would let go now.
OffloadReadiness readiness(const VolumeFacts& v, const std::vector<PresentFile>& files) {
  OffloadReadiness r;
  r.has_policy = !v.cfg.offload_requires.empty();
  for (const auto& f : files) {
    r.present_files += 1;
    r.present_bytes += f.size;
  }
  if (!r.has_policy || files.empty()) return r;
  OffloadGate gate(*v.db, *v.volume_id, v.cfg.offload_requires, v.cfg.offload_max_evidence_age_ns, v.now);
  for (const auto& f : files) {
    if (!gate.judge(f.gate).empty()) continue;
    r.ready_files += 1;
    r.ready_bytes += f.size;
  }
  return r;
}

void judge_index(const VolumeFacts& v, VolumeStatus& s) {
  const std::string& vol = v.cfg.name;
  auto raise = [&](std::string why) {
    s.light = std::max(s.light, Light::amber);
    s.reasons.push_back(std::move(why));
  };
  if (!s.last_index) {
    raise(fmt::format("{} was never indexed — run `squirrel index {}`", vol, vol));
  } else if (s.last_index->status != store::RunStatus::success) {
    raise(fmt::format("the last index of {} (run {}) was {}{} — run `squirrel index {}`", vol, s.last_index->id,
                      store::to_string(s.last_index->status),
                      s.last_index->error.empty() ? "" : ": " + s.last_index->error, vol));
  } else if (v.now - s.last_index->at_ns > kIndexMaxAgeNs) {
    raise(fmt::format("{} was last indexed {} ago — run `squirrel index {}`", vol,
                      format_duration_ns(v.now - s.last_index->at_ns), vol));
  }
  if (!v.volume_id) return;
  if (auto pending = store::count_offload_intents(*v.db, *v.volume_id); pending > 0)
    raise(fmt::format("an interrupted offload left {} file(s) unsettled (present or offloaded?) — run `squirrel index "
                      "{}`, which settles them from what is on disk",
                      pending, vol));
}

// Nothing copies an entry under a reserved name, so the volume is not safe
// while one is there, however green its copies are.
void judge_unprotected(const config::Volume& vc, VolumeStatus& s) {
  if (s.unprotected == 0) return;
  s.light = std::max(s.light, Light::amber);
  bool one = s.unprotected == 1;
  s.reasons.push_back(fmt::format("{} entr{} of {} under names squirrel reserves {} never copied — rename or remove {} "
                                  "(`squirrel index {}` lists {})",
                                  s.unprotected, one ? "y" : "ies", vc.name, one ? "is" : "are", one ? "it" : "them",
                                  vc.name, one ? "it" : "them"));
}

// Seed property 4: while the config names another path than the index
// recorded, every command refuses, so nothing is safe and nothing can be
// offloaded until the volume is moved deliberately.
bool judge_path(const store::VolumeRow& row, const config::Volume& vc, VolumeStatus& s) {
  auto why = path_disagreement(row, vc.path);
  if (!why) return true;
  s.reasons.push_back(*why);
  return false;
}

// A copy verify found gone stays a finding after its alarm is acknowledged:
// only a sync that writes it again (and a verify that proves it) ends it.
void judge_lost_copies(const VolumeFacts& v, TargetStatus& t) {
  if (!v.volume_id || t.kind != TargetKind::destination) return;
  auto lost = store::count_lost_copies(*v.db, *v.volume_id, t.name);
  if (lost == 0) return;
  t.light = std::max(t.light, Light::amber);
  t.reasons.push_back(fmt::format("{} file(s) lost their copy at {} — run `squirrel sync {}`, then `squirrel verify {}`",
                                  lost, t.name, v.cfg.name, t.name));
}

// The volume as every command finds it before it acts: its folder there,
// its marker naming it and this database. Returns the open root; an invalid
// Fd, with the reason recorded, when anything disagrees.
Fd on_disk(const config::Config& cfg, store::Db& db, const config::Volume& vc, VolumeStatus& s) {
  try {
    return std::move(resolve_volume(cfg, db, vc.name, ResolveMode::existing).root);
  } catch (const Error& e) {
    s.reasons.push_back(e.what());
    return Fd();
  }
}

void judge_drift(const VolumeFacts& v, int root, VolumeStatus& s) {
  s.drift = tree_drift(*v.db, *v.volume_id, root, kDriftBudget);
  if (s.drift->changed == 0) return;
  s.light = std::max(s.light, Light::amber);
  s.reasons.push_back(fmt::format("{}{} file(s) added, removed or changed since the last index (first: {}) — run "
                                  "`squirrel index {}`",
                                  s.drift->complete ? "" : "at least ", s.drift->changed,
                                  escape_for_display(s.drift->first), v.cfg.name));
}

// A volume this database never indexed (or with no database at all) may
// still belong to another one: its marker says so, and every command would
// refuse it.
bool claimed_elsewhere(store::Db* db, const config::Volume& vc, VolumeStatus& s) {
  std::optional<Marker> m;
  try {
    auto root = open_root(vc.path);
    if (auto text = read_small_file(root.get(), kMarkerName)) m = parse_marker(*text);
  } catch (const Error&) {
    return false;  // no folder or no readable marker: "never indexed" says what to do
  }
  std::string self = db ? store::database_identity(*db) : "";
  if (m && m->volume != vc.name) {
    s.reasons.push_back(fmt::format("{} is volume \"{}\" by its marker, not \"{}\" — fix the path in the config",
                                    vc.path.string(), escape_for_display(m->volume), vc.name));
    return true;
  }
  if (!m || !m->index_db || *m->index_db == self) return false;
  s.reasons.push_back(fmt::format("{} belongs to another index database (its marker names {}) — use that database "
                                  "(--db), or make this one its owner with `squirrel volumes adopt {}`",
                                  vc.path.string(), escape_for_display(*m->index_db), vc.name));
  return true;
}

VolumeStatus volume_status(const config::Config& cfg, const config::Volume& vc, store::Store* st,
                           const std::vector<store::Alarm>& alarms, std::int64_t now) {
  VolumeStatus s;
  s.name = vc.name;
  s.path = vc.path.string();
  VolumeFacts v{vc, probe_fs(vc.path), st ? &st->db() : nullptr, std::nullopt, {}, 0, alarms, now, &cfg};
  std::vector<PresentFile> files;
  bool path_agrees = true, foreign = false;
  Fd root;
  if (v.db) {
    if (auto row = store::find_volume(*v.db, vc.name)) {
      v.volume_id = row->id;
      path_agrees = judge_path(*row, vc, s);
      if (path_agrees) root = on_disk(cfg, *v.db, vc, s);
    }
  }
  if (!v.volume_id) foreign = claimed_elsewhere(v.db, vc, s);
  if (v.volume_id) {
    s.indexed = any_index_succeeded(*v.db, *v.volume_id);
    s.last_index = last_finished(*v.db, "index", *v.volume_id, "");
    std::int64_t reserved_rows = 0;
    files = load_present_files(*v.db, *v.volume_id, st->self_node_id(), false, &reserved_rows);
    s.unprotected = reserved_rows + reserved_reported(*v.db, *v.volume_id);
    v.present = origin_maxima_of(files);
    v.present_files = static_cast<std::int64_t>(files.size());
  }
  s.light = Light::green;
  judge_index(v, s);
  if (root && s.indexed) judge_drift(v, root.get(), s);
  judge_unprotected(vc, s);
  auto targets = targets_of(vc);
  if (targets.empty()) {
    s.light = std::max(s.light, Light::amber);
    s.reasons.push_back(fmt::format("nothing copies {} — add a destination to its sync_to", vc.name));
  }
  for (const auto& [name, role] : targets) {
    s.targets.push_back(target_status(cfg, v, name, role));
    judge_lost_copies(v, s.targets.back());
    s.light = std::max(s.light, s.targets.back().light);
  }
  s.offload = readiness(v, files);
  bool volatile_required = std::any_of(s.targets.begin(), s.targets.end(), [](const TargetStatus& t) {
    return t.role != TargetRole::sync && !t.volatile_fs.empty();
  });
  if (volatile_required) s.offload.ready_files = s.offload.ready_bytes = 0;
  if (!path_agrees || (v.volume_id && !root) || foreign) {
    s.light = Light::red;
    s.offload.ready_files = s.offload.ready_bytes = 0;
  }
  return s;
}

// Status reads every row of each volume and writes nothing: through a
// read-only mapping of the file SQLite neither copies each page into its
// cache nor faults in fresh cache memory, which takes a third off status at
// 100k files. Only status does this: with a mapping, an I/O error on the
// database file arrives as a signal rather than an error code, acceptable
// for a command that changes nothing.
void read_by_mapping(store::Db& db) {
  constexpr std::int64_t kMapBytes = std::int64_t{1} << 32;  // SQLite caps it at its compile-time maximum
  db.exec(fmt::format("PRAGMA mmap_size={}", kMapBytes));
}

}  // namespace

StatusReport build_status(const config::Config& cfg, store::Store* st, const std::optional<std::string>& volume,
                          std::int64_t now_ns) {
  const config::Volume* only = volume ? cfg.volume(*volume) : nullptr;
  if (volume && !only)
    throw config::unknown_volume(*volume, cfg.file);
  StatusReport r;
  r.now_ns = now_ns;
  r.scope = volume;
  if (st) read_by_mapping(st->db());
  auto alarms = st ? store::list_alarms(st->db()) : std::vector<store::Alarm>{};
  for (const auto& [name, vc] : cfg.volumes) {
    if (only && only != &vc) continue;
    r.volumes.push_back(volume_status(cfg, vc, st, alarms, now_ns));
    r.overall = std::max(r.overall, r.volumes.back().light);
  }
  if (only) {
    auto targets = targets_of(*only);
    std::erase_if(alarms, [&](const store::Alarm& a) {
      return std::none_of(targets.begin(), targets.end(), [&](const auto& p) { return p.first == a.destination; });
    });
  } else if (!alarms.empty()) {
    r.overall = Light::red;
  }
  r.alarms = std::move(alarms);
  return r;
}

}  // namespace sq::engine
