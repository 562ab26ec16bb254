// Executes a mirror plan batch by batch. Each step finishes for the whole
// batch before the next: stage (stream + hash), flush, read back, displace
// (journaled, moved to history, flushed, settled), commit (journaled,
// renamed without replacing, flushed, settled). A path whose step fails
// drops out of the batch; nothing unverified is ever renamed into place.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "core/fs.hpp"
#include "core/text.hpp"
#include "engine/sync/stage.hpp"
#include "store/files.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine::sync {

// ---- displacing -----------------------------------------------------------

namespace {

// Moves an entry squirrel has no record of out of the way, into history,
// loudly: it is named in the output and in the audit trail.
void displace_unrecorded(Push& p, const std::string& rel) {
  store::append_audit(p.db(), p.run_id, "displace-unrecorded", std::nullopt, now_ns(), rel);
  p.t->rename(p.in_volume(rel), p.history_for(rel, p.run_id));
  p.report.displaced_unrecorded += 1;
  p.report.foreign.push_back(rel);
  p.warn(rel, fmt::format("was not written by squirrel; moved to {}", p.history_for(rel, p.run_id)));
}

struct LiveRow {
  std::int64_t id = 0;
  std::string path;
  std::int64_t size = 0, mtime_ns = 0;
};

// Live rows whose folder is `folder` (and, with `below`, every folder
// beneath it), by an index range on the folder path, so a push does not
// read the whole ledger per path.
std::vector<LiveRow> live_rows(Push& p, const std::string& folder, bool below, const std::string* name = nullptr) {
  std::string sql =
      "SELECT r.id, d.path, r.name, r.size_bytes, r.mtime_ns FROM folders d CROSS JOIN remote_paths r ON r.folder_id = "
      "d.id WHERE d.volume_id = ?1 AND r.destination = ?2 AND r.state IN ('committing','live') AND r.state = 'live' AND ";
  // CROSS JOIN fixes the order (folders by their path index, then the
  // partial live index), whatever the planner's statistics say.
  sql += below ? "d.path >= ?3 AND d.path < ?5 AND (d.path = ?3 OR d.path >= ?4)" : "d.path = ?3 AND r.name = ?4";
  store::Stmt st(p.db(), sql);
  st.bind(1, p.volume_id()).bind(2, p.dest()).bind(3, store::blob_of(folder));
  if (below) st.bind(4, store::blob_of(folder + "/")).bind(5, store::blob_of(folder + "0"));  // '0' follows '/'
  else st.bind(4, store::blob_of(*name));
  std::vector<LiveRow> out;
  while (st.step()) {
    auto d = st.blob(1), n = st.blob(2);
    std::string dir(d.begin(), d.end()), leaf(n.begin(), n.end());
    out.push_back({st.i64(0), dir.empty() ? leaf : dir + "/" + leaf, st.i64(3), st.i64(4)});
  }
  return out;
}

// Live rows under a directory move with it.
std::vector<LiveRow> live_rows_under(Push& p, const std::string& dir) { return live_rows(p, dir, true); }

// Live rows under a name that is not a directory cannot hold their bytes.
void lose_rows_under(Push& p, const std::string& rel) {
  std::vector<std::int64_t> ids;
  for (const auto& r : live_rows_under(p, rel)) {
    ids.push_back(r.id);
    p.warn(r.path, "the recorded copy had vanished from the destination");
  }
  store::mark_lost(p.db(), ids);
}

// Only rows whose bytes are still there as recorded become displaced; a
// version changed or removed behind squirrel's back becomes lost (its
// bytes, if any, still move to history with the directory).
void displace_directory(Push& p, const std::string& rel, std::vector<std::int64_t>& displacing) {
  std::vector<std::int64_t> ids, lost;
  for (const auto& r : live_rows_under(p, rel)) {
    auto st = p.t->stat(p.in_volume(r.path));
    bool holds = st.type == dest::EntryType::file && st.size == r.size && st.mtime_ns == r.mtime_ns;
    (holds ? ids : lost).push_back(r.id);
    if (!holds) p.warn(r.path, "the recorded copy was changed or removed at the destination");
  }
  if (ids.empty() && lost.empty()) return displace_unrecorded(p, rel);  // nothing under it is ours
  store::mark_lost(p.db(), lost);
  store::transition(p.db(), ids, "live", "displacing", p.run_id);
  p.t->rename(p.in_volume(rel), p.history_for(rel, p.run_id));
  displacing.insert(displacing.end(), ids.begin(), ids.end());
  p.report.displaced += static_cast<std::int64_t>(ids.size());
}

std::optional<LiveRow> live_row_at(Push& p, const std::string& path) {
  auto [folder, name] = store::split_path(path);
  auto rows = live_rows(p, folder, false, &name);
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

// What displacing a batch found at the prefixes of its paths. Nothing the
// batch's displacing does turns a directory into something else or creates
// anything under a missing prefix (renames go to history), so what was seen
// holds for the rest of the batch.
struct Prefixes {
  std::set<std::string> directories, missing;
  // A path below a missing prefix is missing too: no need to ask.
  bool below_missing(const std::string& path) const {
    for (std::size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
      if (missing.count(path.substr(0, slash))) return true;
    return false;
  }
};

// A file or link where a parent directory must go is moved aside. A file
// squirrel recorded there (the source turned that file into a directory)
// is displaced like any recorded version, so its row follows its bytes.
void clear_parents(Push& p, const std::string& path, std::vector<std::int64_t>& displacing, Prefixes& seen) {
  for (std::size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (seen.directories.count(prefix)) continue;
    if (seen.missing.count(prefix)) return;
    auto st = p.t->stat(p.in_volume(prefix));
    if (st.type == dest::EntryType::none) {
      seen.missing.insert(std::move(prefix));
      return;
    }
    if (st.type == dest::EntryType::directory) {
      seen.directories.insert(std::move(prefix));
      continue;
    }
    auto row = live_row_at(p, prefix);
    if (row && st.type == dest::EntryType::file && st.size == row->size && st.mtime_ns == row->mtime_ns) {
      store::transition(p.db(), {row->id}, "live", "displacing", p.run_id);
      p.t->rename(p.in_volume(prefix), p.history_for(prefix, p.run_id));
      displacing.push_back(row->id);
      p.report.displaced += 1;
      continue;
    }
    if (row) store::mark_lost(p.db(), {row->id});
    lose_rows_under(p, prefix);
    displace_unrecorded(p, prefix);
  }
}

bool still_live(Push& p, std::int64_t row_id) {
  return p.db().query_i64("SELECT count(*) FROM remote_paths WHERE id = ? AND state = 'live'",
                          {store::Value{row_id}}).value_or(0) == 1;
}

void displace_target(Push& p, const PlannedWrite& w, std::vector<std::int64_t>& displacing, const Prefixes& seen) {
  auto st = seen.below_missing(w.path) ? dest::Stat{} : p.t->stat(p.in_volume(w.path));
  bool recorded = w.replaces_row && st.type == dest::EntryType::file && st.size == w.replaced_size &&
                  st.mtime_ns == w.replaced_mtime_ns;
  if (recorded) {
    store::transition(p.db(), {*w.replaces_row}, "live", "displacing", p.run_id);
    p.t->rename(p.in_volume(w.path), p.history_for(w.path, p.run_id));
    displacing.push_back(*w.replaces_row);
    p.report.displaced += 1;
    return;
  }
  // The row may already be lost: clearing the way found a parent that
  // was not a directory.
  if (w.replaces_row && still_live(p, *w.replaces_row)) {
    store::mark_lost(p.db(), {*w.replaces_row});
    if (st.type == dest::EntryType::none) p.warn(w.path, "the recorded copy had vanished from the destination");
  }
  if (st.type == dest::EntryType::directory) return displace_directory(p, w.path, displacing);
  lose_rows_under(p, w.path);
  if (st.type != dest::EntryType::none) displace_unrecorded(p, w.path);
}

void displace_each(Push& p, std::vector<Item>& items, std::vector<std::int64_t>& displacing) {
  Prefixes seen;
  for (auto& it : items) {
    if (!it.ok) continue;
    try {
      clear_parents(p, it.w->path, displacing, seen);
      displace_target(p, *it.w, displacing, seen);
    } catch (const dest::StallError&) {
      throw;
    } catch (const Error& e) {
      drop(p, it, e.what());
    }
  }
}

// The batch is displaced path by path on one helper thread while this one
// waits: its calls then run inline instead of each being handed to a
// worker, and a stalled one is left behind (StallError) rather than waited
// for. The helper makes no transport call inside a database statement, so
// when it is left behind the database is free for the run's finish.
void displace(Push& p, std::vector<Item>& items) {
  std::vector<std::int64_t> displacing;
  {
    dest::HelperThreads helper(*p.raw);
    helper.spawn([&] { displace_each(p, items, displacing); });
    helper.wait();
  }
  p.t->flush();
  store::transition(p.db(), displacing, "displacing", "displaced");
}

// ---- committing -----------------------------------------------------------

void commit(Push& p, std::vector<Item>& items) {
  std::vector<store::CommitIntent> intents;
  std::vector<Item*> committing;
  for (auto& it : items) {
    if (!it.ok) continue;
    // Only a read from the medium is recorded as the copy's checksum: the
    // ledger's checksums are what later pushes claim as verified. On a
    // memory filesystem the bytes are right but will not outlive a reboot,
    // so the copy is never stamped verified (the offload gate trusts a
    // stamped read-back).
    std::optional<std::string> checksum;
    std::optional<std::int64_t> verified_at;
    if ((it.from_medium || it.by_server) && !it.checksum.empty()) {
      checksum = it.checksum;
      if (p.volatile_fs.empty()) verified_at = it.verified_at;
    }
    intents.push_back({it.w->path, it.w->content_id, it.w->size, it.stored_mtime, checksum, verified_at, it.algo});
    committing.push_back(&it);
  }
  auto ids = store::begin_commits(p.db(), p.dest(), p.volume_id(), p.run_id, intents);
  in_flight(p, items, p.in_flight,
            [&](Item& it) { p.t->rename(it.staged, p.in_volume(it.w->path)); });
  // A rename that failed leaves its row pointing at bytes that are not there.
  std::vector<std::int64_t> landed, lost;
  for (std::size_t i = 0; i < committing.size(); ++i) (committing[i]->ok ? landed : lost).push_back(ids[i]);
  store::mark_lost(p.db(), lost);
  p.t->flush();
  store::transition(p.db(), landed, "committing", "live");
  for (auto* it : committing) {
    if (!it->ok) continue;
    p.report.written += 1;
    p.report.bytes += it->w->size;
    p.files_done += 1;
    p.bytes_done += it->w->size;
  }
  p.progress(committing.empty() ? "" : committing.back()->w->path);
}



}  // namespace

// With more than one path in flight, staging the next batch overlaps the
// read-back, displacing and committing of this one: staging is mostly CPU
// and the read-back mostly waits for the device. With one in flight every
// step runs in order, so the transport calls come in a fixed order.
void execute_plan(Push& p, const Plan& plan) {
  p.files_total = static_cast<std::int64_t>(plan.writes.size());
  p.bytes_total = plan.bytes;
  // The plan first, so the front end's clock starts before the first batch.
  if (!plan.writes.empty()) p.progress("");
  std::size_t i = 0;
  bool overlap = p.in_flight > 1;
  auto staged = [&p](const PlannedWrite& w) { return p.staging_for(w.path, p.run_id); };
  std::vector<Item> batch = next_batch(p, plan, i, p.opts.batch_files, staged);
  stage(p, batch);
  while (!batch.empty()) {
    finish_stage(p, batch);
    std::vector<Item> next = next_batch(p, plan, i, p.opts.batch_files, staged);
    {
      std::optional<StageAhead> ahead;
      if (overlap && !next.empty()) ahead.emplace(p, next);
      read_back(p, batch);
      displace(p, batch);
      commit(p, batch);
    }
    if (!overlap) stage(p, next);
    batch = std::move(next);
  }
}

}  // namespace sq::engine::sync
