// Naming and reporting helpers of a push, the watermark rule and reconcile.
#include <fmt/format.h>

#include "core/text.hpp"
#include "engine/sync/push.hpp"
#include "store/artifacts.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine::sync {

std::string Push::staging_dir(std::int64_t run) const {
  return in_volume(fmt::format("{}/run-{}", kStaging, run));
}

std::string Push::staging_for(const std::string& path, std::int64_t run) const {
  return staging_dir(run) + "/" + to_hex(blake3(path));
}

std::string Push::history_for(const std::string& path, std::int64_t run) const {
  return in_volume(fmt::format("{}/run-{}/{}", kHistory, run, path));
}

std::string Push::receipt(std::int64_t run) const {
  return in_volume(fmt::format("{}/run-{}", content_layout() ? kSegmentDir : kIndexDir, run));
}

void Push::warn(const std::string& path, const std::string& msg) {
  if (listener) listener({SyncEvent::Type::warning, path, msg, files_done, files_total, bytes_done, bytes_total});
}

void Push::file_error(const std::string& path, const std::string& msg) {
  if (listener) listener({SyncEvent::Type::file_error, path, msg, files_done, files_total, bytes_done, bytes_total});
}

void Push::progress(const std::string& path) {
  if (listener) listener({SyncEvent::Type::progress, path, "", files_done, files_total, bytes_done, bytes_total});
}

// ---- watermark ----------------------------------------------------------

namespace {

std::int64_t last_success(Push& p) {
  return p.db()
      .query_i64("SELECT MAX(id) FROM runs WHERE kind = 'sync' AND status = 'success' AND volume_id = ? AND "
                 "destination = ?",
                 {store::Value{p.volume_id()}, store::Value{p.dest()}})
      .value_or(0);
}

// Anything in the volume directory besides squirrel's own bookkeeping?
bool volume_dir_holds_data(Push& p) {
  auto st = p.t->stat(p.name());
  if (st.type == dest::EntryType::none) return false;
  for (const auto& e : p.t->list(p.name()))
    if (e.name != kMarkerName && e.name != kStaging) return true;
  return false;
}

}  // namespace

// The watermark is the last successful push whose receipt is still there.
// A destination that lost its receipts is refused rather than trusted; a
// first push onto a tree squirrel holds no record of adopts only the copies
// its receipts vouch for and a read-back confirms (adopt.cpp).
std::int64_t watermark(Push& p) {
  std::int64_t last = last_success(p);
  bool recorded = store::has_ledger_rows(p.db(), p.dest(), p.volume_id());
  if (p.content_layout())
    recorded = recorded || store::count_objects(p.db(), p.dest()) > 0 || store::count_remote_packs(p.db(), p.dest()) > 0;
  if (last == 0 && p.content_layout()) return 0;  // objects already there are confirmed, never adopted blindly
  if (last == 0) {
    if (volume_dir_holds_data(p)) adopt_vouched_copies(p, !recorded);
    return 0;
  }
  if (p.t->stat(p.receipt(last)).type == dest::EntryType::file) return last;
  if (!recorded && !volume_dir_holds_data(p)) return 0;
  throw Error(ErrorKind::refused,
              fmt::format("the {} of the last successful sync (run {}) is missing at {}/{} — the destination may "
                          "have been wiped or replaced; if so run `squirrel destination reset {}` and sync again",
                          p.content_layout() ? "segment" : "receipt", last, p.root, p.receipt(last), p.dest()));
}

// ---- reconcile ----------------------------------------------------------

namespace {

bool holds(Push& p, const std::string& name, const store::LedgerRow& r) {
  auto st = p.t->stat(name);
  return st.type == dest::EntryType::file && st.size == r.size && st.mtime_ns == r.mtime_ns;
}

void settle_row(Push& p, const store::LedgerRow& r) {
  auto& db = p.db();
  if (r.state == "committing") {
    bool staged_gone = p.t->stat(p.staging_for(r.path, r.written_run)).type == dest::EntryType::none;
    if (staged_gone && holds(p, p.in_volume(r.path), r)) store::transition(db, {r.id}, "committing", "live");
    else store::mark_lost(db, {r.id});
  } else {
    if (holds(p, p.history_for(r.path, *r.displaced_run), r)) store::transition(db, {r.id}, "displacing", "displaced");
    else if (holds(p, p.in_volume(r.path), r)) store::transition(db, {r.id}, "displacing", "live");
    else store::mark_lost(db, {r.id});
  }
  p.report.reconciled += 1;
}

void clean_staging(Push& p) {
  auto dir = p.in_volume(kStaging);
  if (p.t->stat(dir).type != dest::EntryType::directory) return;
  for (const auto& e : p.t->list(dir)) {
    std::string sub = dir + "/" + e.name;
    auto id = dest::run_id_in(e.name);
    if (!id || e.stat.type != dest::EntryType::directory || *id == p.run_id) continue;
    try {
      for (const auto& f : p.t->list(sub)) p.t->remove(sub + "/" + f.name);
      p.t->remove(sub);
    } catch (const Error& err) {
      p.warn(sub, fmt::format("left in place: {}", err.what()));
    }
  }
}

}  // namespace

// The run has finished, so its staging directory may go; staged files of
// paths that failed stay for the next run to judge.
void remove_own_staging(Push& p) {
  auto dir = p.staging_dir(p.run_id);
  try {
    if (p.t->stat(dir).type != dest::EntryType::directory || !p.t->list(dir).empty()) return;
    p.t->remove(dir);
  } catch (const Error& e) {
    p.warn(dir, fmt::format("left in place: {}", e.what()));
  }
}

void reconcile(Push& p) {
  auto unsettled = store::ledger_rows(p.db(), p.dest(), p.volume_id(), {"committing", "displacing"});
  if (!unsettled.empty()) p.t->flush();  // a cancelled push may have left moves unflushed
  for (const auto& r : unsettled) settle_row(p, r);
  clean_staging(p);
}

}  // namespace sq::engine::sync
