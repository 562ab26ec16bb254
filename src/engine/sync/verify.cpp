#include "engine/sync/verify.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <map>
#include <optional>
#include <thread>

#include "core/text.hpp"
#include "core/fsinfo.hpp"
#include "engine/layout_check.hpp"
#include "engine/volume.hpp"
#include "store/alarms.hpp"
#include "store/artifacts.hpp"
#include "store/evidence.hpp"
#include "store/remote_paths.hpp"
#include "store/volumes.hpp"

namespace sq::engine::sync {

namespace {

struct VolumeCheck {
  store::VolumeRow row;
  std::int64_t run_id = 0;
  std::vector<store::LedgerRow> rows;
  std::vector<VerifyFinding> findings;
  // A finding about what the volume shares with others (an object of a
  // content-addressed destination) taints it without being its own.
  bool tainted = false;
};

std::string located(const std::string& volume, const store::LedgerRow& r) {
  if (r.state == "displaced") return fmt::format("{}/.squirrel-history/run-{}/{}", volume, *r.displaced_run, r.path);
  return volume + "/" + r.path;
}

std::vector<store::VolumeRow> volumes_synced_to(const config::Config& cfg, store::Db& db, const std::string& dest) {
  std::vector<store::VolumeRow> out;
  for (const auto& [name, vol] : cfg.volumes)
    if (std::find(vol.sync_to.begin(), vol.sync_to.end(), dest) != vol.sync_to.end())
      if (auto row = store::find_volume(db, name)) out.push_back(*row);
  return out;
}

// Seed property 4: while a volume's config path disagrees with the path the
// index recorded, every command refuses until `volumes move`, verify too —
// it would otherwise refresh evidence for a volume nothing else may touch.
void check_recorded_paths(const config::Config& cfg, const std::vector<store::VolumeRow>& vols) {
  for (const auto& v : vols) {
    if (auto why = path_disagreement(v, cfg.volume(v.name)->path))
      throw Error(ErrorKind::refused, *why + "; nothing was checked");
  }
}

// Every marker first: one missing marker stops the pass before anything is
// judged, because an unmounted disk must not read as "every copy lost".
void check_markers(dest::Transport& t, const std::string& root, const std::vector<store::VolumeRow>& vols) {
  for (const auto& v : vols)
    if (auto why = marker_problem(t, v.name))
      throw Error(ErrorKind::refused, fmt::format("{} under {} — is the disk mounted? nothing was checked", *why, root));
}

void judge_stat(VolumeCheck& vc, const store::LedgerRow& r, const std::string& where, const dest::Stat& st) {
  if (st.type == dest::EntryType::none)
    vc.findings.push_back({vc.row.name, r.path, "missing", "gone from " + where});
  else if (st.type != dest::EntryType::file || st.size != r.size || st.mtime_ns != r.mtime_ns)
    vc.findings.push_back({vc.row.name, r.path, "changed", "size or mtime differ at " + where});
}

// Copies are stat'ed many at a time: a server answers a folder's copies
// with one listing. Rows come ordered by path, so a chunk holds whole
// folders but for its edges.
constexpr std::size_t kStatChunk = 4096;

void stat_rows(dest::Transport& t, VolumeCheck& vc, ProgressTally& tally) {
  for (std::size_t from = 0; from < vc.rows.size(); from += kStatChunk) {
    std::size_t to = std::min(vc.rows.size(), from + kStatChunk);
    std::vector<std::string> where;
    for (std::size_t i = from; i < to; ++i) where.push_back(located(vc.row.name, vc.rows[i]));
    auto stats = t.stat_many(where);
    for (std::size_t i = from; i < to; ++i) {
      judge_stat(vc, vc.rows[i], where[i - from], stats[i - from]);
      tally.done(where[i - from], 0);
    }
  }
}

void stat_all(dest::Transport& t, std::vector<VolumeCheck>& vols, const ProgressListener& listener) {
  std::int64_t copies = 0;
  for (const auto& vc : vols) copies += static_cast<std::int64_t>(vc.rows.size());
  ProgressTally tally(listener, "checking", copies, 0);
  for (auto& vc : vols) stat_rows(t, vc, tally);
}

}  // namespace

namespace {

bool already_found(const VolumeCheck& vc, const std::string& path) {
  return std::any_of(vc.findings.begin(), vc.findings.end(), [&](const auto& f) { return f.path == path; });
}

using Copy = std::pair<VolumeCheck*, const store::LedgerRow*>;

// Least recently verified first (never-verified before all), until the
// share of stored bytes is covered; at least one copy per pass. Chosen
// before the first read, so the pass knows its bytes and can report an
// estimate. Adds the stored bytes to rep.
std::vector<Copy> rehash_plan(std::vector<VolumeCheck>& vols, const VerifyOptions& o, VerifyReport& rep) {
  std::vector<Copy> order;
  for (auto& vc : vols)
    for (const auto& r : vc.rows) {
      rep.bytes_stored += r.size;
      if (!already_found(vc, r.path)) order.emplace_back(&vc, &r);
    }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->verified_at_ns.value_or(-1) < b.second->verified_at_ns.value_or(-1);
  });
  auto budget = static_cast<std::int64_t>(static_cast<double>(rep.bytes_stored) * o.share);
  std::size_t n = 0;
  std::int64_t planned = 0;
  while (n < order.size() && (o.full || n == 0 || planned < budget)) planned += order[n++].second->size;
  order.resize(n);
  return order;
}

enum class Judgement { match, changed, unchecked };

// BLAKE3 is compared with the content's hash; another algorithm (a
// server's sha256sum) only with the checksum recorded under it.
Judgement judge(const dest::ReadBack& rb, const store::LedgerRow& r) {
  if (rb.bytes != r.size) return Judgement::changed;
  if (rb.algo == "blake3") return rb.hash == r.hash ? Judgement::match : Judgement::changed;
  if (!rb.measured() || !r.checksum || r.checksum_algo != rb.algo) return Judgement::unchecked;
  return rb.checksum == *r.checksum ? Judgement::match : Judgement::changed;
}

void take_judgement(store::Db& db, VerifyReport& rep, VolumeCheck& vc, const store::LedgerRow& r,
                    const std::string& where, const dest::ReadBack& rb) {
  rep.rehashed += 1;
  rep.bytes_rehashed += rb.bytes;
  switch (judge(rb, r)) {
    case Judgement::changed:
      vc.findings.push_back({vc.row.name, r.path, "changed", "content differs at " + where});
      break;
    case Judgement::unchecked:
      rep.unchecked += 1;
      break;
    case Judgement::match:
      if (rep.volatile_fs.empty())  // a read-back from memory is not stamped as verified
        store::record_verified_in_tx(db, r.id, rb.checksum, now_ns(), rb.algo);
  }
}

// A server's hash command is given many copies at once; anything else
// reads them one by one.

std::size_t group_end(const std::vector<Copy>& plan, std::size_t from, bool grouped) {
  std::size_t end = from + 1;
  std::int64_t bytes = plan[from].second->size;
  while (grouped && end < plan.size() && end - from < dest::kReadBackGroupFiles && bytes < dest::kReadBackGroupBytes)
    bytes += plan[end++].second->size;
  return end;
}

// One group of copies read back: by the server's hash command for many at
// once, else one copy by download or read-back.
struct Group {
  std::size_t begin = 0, end = 0;
  std::vector<std::string> where;
  std::vector<dest::ReadBack> rbs;
  std::exception_ptr failed;
};

void read_group(dest::Transport& t, const VerifyOptions& o, bool grouped, Group& g) {
  try {
    g.rbs = o.download ? std::vector{dest::download_blake3(t, g.where.front())}
            : grouped  ? t.read_back_many(g.where)
                       : std::vector{t.read_back(g.where.front())};
  } catch (...) {
    g.failed = std::current_exception();
  }
}

// Server-side groups run a few at a time, each on a connection of its own
// (the server spends most of a small group starting its command).
constexpr std::size_t kGroupsAtOnce = 4;

std::vector<Group> next_wave(const std::vector<Copy>& plan, std::size_t& i, bool grouped) {
  std::vector<Group> wave;
  while (i < plan.size() && wave.size() < (grouped ? kGroupsAtOnce : 1)) {
    Group g{i, group_end(plan, i, grouped), {}, {}, nullptr};
    for (std::size_t k = g.begin; k < g.end; ++k) g.where.push_back(located(plan[k].first->row.name, *plan[k].second));
    i = g.end;
    wave.push_back(std::move(g));
  }
  return wave;
}

void rehash_rows(dest::Transport& t, store::Db& db, std::vector<VolumeCheck>& vols, const VerifyOptions& o,
                 VerifyReport& rep, const ProgressListener& listener) {
  auto plan = rehash_plan(vols, o, rep);
  std::int64_t bytes = 0;
  for (const auto& c : plan) bytes += c.second->size;
  ProgressTally tally(listener, "re-hashing", static_cast<std::int64_t>(plan.size()), bytes);
  bool grouped = !o.download && t.hashes_on_server();
  for (std::size_t i = 0; i < plan.size();) {
    auto wave = next_wave(plan, i, grouped);
    if (wave.size() == 1) read_group(t, o, grouped, wave.front());
    else {
      std::vector<std::thread> threads;
      for (auto& g : wave) threads.emplace_back([&t, &o, grouped, &g] { read_group(t, o, grouped, g); });
      for (auto& th : threads) th.join();
    }
    for (auto& g : wave) {
      if (g.failed) std::rethrow_exception(g.failed);
      store::Tx tx(db);  // one commit per group, not per copy
      for (std::size_t k = g.begin; k < g.end; ++k)
        take_judgement(db, rep, *plan[k].first, *plan[k].second, g.where[k - g.begin], g.rbs[k - g.begin]);
      tx.commit();
      for (std::size_t k = g.begin; k < g.end; ++k) tally.done(g.where[k - g.begin], plan[k].second->size);
    }
  }
}

// Demotes every locally verified component to presence+size: the copies
// can no longer be trusted until a clean pass.
void demote(store::Db& db, std::int64_t volume_id, const std::string& dest) {
  for (const auto& c : store::vector_of(db, volume_id, dest)) {
    if (!store::is_content_verified(c.method) || c.source_node_id) continue;
    store::upsert_vector_in_tx(db, {volume_id, dest, c.origin_node_id, c.origin_run_id,
                                    store::VerifyMethod::presence_size, false, std::nullopt, std::nullopt, false, false});
  }
}

}  // namespace

bool record_lost_copies_in_tx(store::Db& db, std::int64_t volume_id, const std::string& dest,
                              const std::vector<std::int64_t>& ledger_ids, const std::string& kind,
                              const std::string& detail, std::int64_t run_id) {
  for (auto id : ledger_ids) db.execute("UPDATE remote_paths SET state = 'lost' WHERE id = ?", {store::Value{id}});
  demote(db, volume_id, dest);
  return store::raise_alarm_in_tx(db, dest, kind, detail, run_id);
}

namespace {

bool has_unverified_copies(store::Db& db, std::int64_t volume_id, const std::string& dest) {
  return db.query_i64("SELECT EXISTS (SELECT 1 FROM remote_paths WHERE destination = ? AND state = 'live' AND "
                      "checksum IS NULL AND folder_id IN (SELECT id FROM folders WHERE volume_id = ?))",
                      {store::Value{dest}, store::Value{volume_id}})
             .value_or(0) != 0;
}

// A clean pass re-stamps the components it covered, provided no present
// path still waits for a lost copy to be rewritten. It claims what it
// measured (`method`) only when every live copy carries a checksum; copies
// on a memory filesystem, or never hashed by anyone, give presence+size.
bool refresh(store::Db& db, std::int64_t volume_id, const std::string& dest, std::optional<store::VerifyMethod> method,
             bool objects) {
  if (store::count_lost_copies(db, volume_id, dest) > 0) return false;
  if (objects && !store::volume_contents_held(db, volume_id, dest, false)) return false;
  if (method && has_unverified_copies(db, volume_id, dest)) method.reset();
  if (method && objects && !store::volume_contents_held(db, volume_id, dest, true)) method.reset();
  for (const auto& c : store::vector_of(db, volume_id, dest)) {
    if (c.source_node_id) continue;
    store::upsert_vector_in_tx(db, {volume_id, dest, c.origin_node_id, c.origin_run_id,
                                    method.value_or(store::VerifyMethod::presence_size), method.has_value(),
                                    std::nullopt, std::nullopt, false, false});
  }
  return true;
}

// What a clean pass measured: nothing content-verified from a memory
// filesystem, a destination that cannot make bytes durable, or a pass that
// could not hash some copy.
std::optional<store::VerifyMethod> pass_method(const VerifyReport& rep, const VerifyOptions& o, bool remote,
                                               bool durable) {
  if (!rep.volatile_fs.empty() || !durable || rep.unchecked > 0) return std::nullopt;
  if (o.download) return store::VerifyMethod::download_blake3;
  return remote ? store::VerifyMethod::server_hash : store::VerifyMethod::fingerprint_verified;
}

void close_volume(store::Db& db, VolumeCheck& vc, const std::string& dest, VerifyReport& rep,
                  std::optional<store::VerifyMethod> method, bool objects) {
  bool clean = vc.findings.empty() && !vc.tainted;
  std::string err = clean ? ""
                    : vc.findings.empty()
                        ? "objects it shares with other volumes are missing or changed (see that volume's verify run)"
                        : fmt::format("{} copy(ies) missing or changed", vc.findings.size());
  store::Assignments cols{{"file_count", store::Value{static_cast<std::int64_t>(vc.rows.size())}},
                          {"error", clean ? store::Value{} : store::Value{err}}};
  store::finish_record(db, store::kRunsTable, vc.run_id, clean ? "success" : "partial", cols,
                       [&](store::Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                         store::append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                         if (clean) {
                           if (refresh(d, vc.row.id, dest, method, objects))
                             rep.refreshed_volumes.push_back(vc.row.name);
                           return;
                         }
                         std::vector<std::int64_t> lost;
                         for (const auto& r : vc.rows)
                           if (already_found(vc, r.path)) lost.push_back(r.id);
                         rep.alarm_raised |= record_lost_copies_in_tx(d, vc.row.id, dest, lost, "verify-mismatch", err, id);
                       });
  rep.findings.insert(rep.findings.end(), vc.findings.begin(), vc.findings.end());
}

}  // namespace

namespace {

std::vector<VolumeCheck> begin_checks(store::Db& db, const std::vector<store::VolumeRow>& vols, const std::string& dest) {
  std::vector<VolumeCheck> out;
  for (const auto& v : vols) {
    auto begun = store::begin_run(db, {store::RunKind::verify, v.id, dest});
    if (!begun.began()) {
      for (auto& vc : out) store::finish_run(db, vc.run_id, {store::RunStatus::aborted, "another run holds the gate", 0, std::nullopt});
      throw Error(ErrorKind::conflict, store::blocked_message(*begun.blocker));
    }
    out.push_back({v, begun.run_id, store::ledger_rows(db, dest, v.id, {"live", "displaced"}), {}});
  }
  return out;
}

void clear_if_clean(store::Db& db, const std::string& dest, const std::vector<VolumeCheck>& vols, VerifyReport& rep) {
  // Clean means whole again: no finding now and no lost copy still waiting
  // for a sync to rewrite it.
  if (!rep.findings.empty() || vols.empty() || rep.refreshed_volumes.size() != vols.size()) return;
  store::Tx tx(db);
  rep.alarm_cleared = store::clear_alarm_in_tx(db, dest, vols.front().run_id, std::nullopt);
  tx.commit();
}

// Fails closed: a root whose filesystem cannot be examined counts as volatile.
std::string volatile_type(const std::string& root) {
  try {
    auto fs = fs_info(root);
    return fs.is_volatile ? fs.type : "";
  } catch (const Error&) {
    return "an unknown filesystem";
  }
}

// What the object pass found, written once it is over: confirmed objects
// stamped, lost ones forgotten (the next push uploads them again), and each
// finding given to the volume it concerns — an object's to the first
// volume, tainting the others, since they may share it.
void apply_object_pass(store::Db& db, const std::string& dest, ObjectFindings& found, std::vector<VolumeCheck>& vols,
                       VerifyReport& rep) {
  store::Tx tx(db);
  for (const auto& s : found.stamps) {
    store::Measured m{s.algo, s.checksum, s.at_ns};
    if (s.content_id) store::stamp_object_in_tx(db, s.content_id, dest, m);
    else store::stamp_pack_in_tx(db, s.pack, dest, m);
  }
  for (auto id : found.lost_contents) store::forget_object(db, id, dest);
  for (const auto& key : found.lost_packs) store::forget_remote_pack(db, key, dest);
  tx.commit();
  rep.orphans = found.orphans;
  for (auto& f : found.findings) {
    auto vc = std::find_if(vols.begin(), vols.end(), [&](const VolumeCheck& v) { return v.row.name == f.volume; });
    if (vc == vols.end()) {
      for (auto& v : vols) v.tainted = true;
      vc = vols.begin();
    }
    vc->findings.push_back(std::move(f));
  }
}

void record_refusal(store::Db& db, const std::vector<store::VolumeRow>& vols, const std::string& dest,
                    const Error& e) {
  for (const auto& v : vols)
    store::record_terminal_run(db, {store::RunKind::verify, v.id, dest}, store::RunStatus::refused, e.what());
}

}  // namespace

VerifyReport run_verify(const config::Config& cfg, store::Store& st, const std::string& destination,
                        const VerifyOptions& opts, const ProgressListener& listener) {
  const auto& d = require_push_target(cfg, destination);
  bool objects = d.native_content() || d.native_packed();
  auto& db = st.db();
  VerifyReport rep;
  rep.destination = destination;
  auto vols = volumes_synced_to(cfg, db, destination);
  if (vols.empty())
    throw Error(ErrorKind::usage, fmt::format("no indexed volume syncs to \"{}\" — nothing to verify", destination));
  std::unique_ptr<dest::Transport> t;
  try {
    check_recorded_paths(cfg, vols);
    require_destination_layout(cfg, destination);
    std::error_code ec;
    if (d.type == "local" && !std::filesystem::is_directory(d.root, ec))
      throw Error(ErrorKind::refused, fmt::format("destination root {} is not there — is the disk mounted? nothing was "
                                                  "checked", d.root));
    dest::StallOptions stall = opts.stall;
    stall.destination = destination;
    t = dest::stall_guarded(open_mirror_transport(d, opts.transport), std::move(stall));
    check_markers(*t, d.root, vols);
    if (d.type == "local") rep.volatile_fs = volatile_type(d.root);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::refused) record_refusal(db, vols, destination, e);
    throw;
  }
  auto checks = begin_checks(db, vols, destination);
  ObjectFindings found;
  try {
    // On a helper, so the calls run inline (not each handed to a worker)
    // and a stalled one is left behind; it makes no transport call inside
    // a database statement, so the database is then free for the finish.
    dest::HelperThreads helper(*t);
    helper.spawn([&] {
      if (objects) return void(found = verify_objects(*t, db, destination, vols, opts, rep, listener));
      stat_all(*t, checks, listener);
      rehash_rows(*t, db, checks, opts, rep, listener);
    });
    helper.wait();
    if (objects) apply_object_pass(db, destination, found, checks, rep);
  } catch (const std::exception& e) {
    for (auto& vc : checks) store::finish_run(db, vc.run_id, {store::RunStatus::failed, e.what(), 0, std::nullopt});
    throw;
  }
  auto method = pass_method(rep, opts, t->hashes_on_server(), t->durability_gap().empty());
  rep.method = std::string(store::to_string(method.value_or(store::VerifyMethod::presence_size)));
  for (auto& vc : checks) {
    rep.checked += static_cast<std::int64_t>(vc.rows.size());
    rep.run_ids.push_back(vc.run_id);
    close_volume(db, vc, destination, rep, method, objects);
  }
  clear_if_clean(db, destination, checks, rep);
  return rep;
}

bool acknowledge_alarm(store::Db& db, const std::string& destination, const std::string& operator_name) {
  store::Tx tx(db);
  auto exists = db.query_i64("SELECT count(*) FROM destination_alarms WHERE destination = ?", {store::Value{destination}});
  if (exists.value_or(0) == 0) return false;
  tx.commit();
  auto run = store::record_terminal_run(db, {store::RunKind::verify, std::nullopt, destination},
                                        store::RunStatus::success, "");
  store::Tx tx2(db);
  bool cleared = store::clear_alarm_in_tx(db, destination, run,
                                          operator_name.empty() ? std::nullopt : std::optional(operator_name));
  tx2.commit();
  return cleared;
}

}  // namespace sq::engine::sync
