// The push of a content-addressed destination (spec sync-offload-restore.md
// §3.3): each content of the delta once, as objects/<64 hex BLAKE3>, shared
// by every volume. An object is staged, flushed, read back, moved onto its
// name without replacing, flushed again, and only then recorded; a name
// that exists already is confirmed, never replaced.
//
//  object name at the destination | what the push does
//  -------------------------------+----------------------------------------
//  absent                         | stage, flush, read back, rename, flush,
//                                 | record (checksum when measured)
//  a file with the named bytes    | record it (read back first)
//  a file with other bytes        | refuse that content (the run is partial)
//  anything else                  | refuse that content
//  appears between stat and move  | rename fails EEXIST: confirmed as above
#include <fmt/format.h>

#include <cerrno>
#include <map>
#include <optional>
#include <unordered_set>

#include "core/text.hpp"
#include "engine/sync/stage.hpp"
#include "store/artifacts.hpp"
#include "store/evidence.hpp"
#include "store/files.hpp"

namespace sq::engine::sync {

std::string object_name(const Digest& hash) { return fmt::format("{}/{}", kObjectsDir, to_hex(hash)); }

std::string pack_name(const Digest& key) { return "packs/" + to_hex(key); }

namespace {


// Every present content of the volume, not only the delta: an object that
// verify found lost (and forgot) is uploaded again by the next push.
std::string present_sql() {
  return fmt::format(
      "SELECT d.path, f.name, c.id, c.blake3, c.size_bytes, f.mtime_ns, "
      "EXISTS (SELECT 1 FROM remote_objects o WHERE o.content_id = c.id AND o.destination = ?3) OR "
      "EXISTS (SELECT 1 FROM pack_members m JOIN remote_packs r ON r.pack_id = m.pack_id WHERE m.content_id = c.id "
      "AND r.destination = ?3), COALESCE(f.status_changed_run_id, f.first_seen_run_id) > ?2 FROM files f JOIN "
      "folders d ON d.id = f.folder_id JOIN contents c ON c.id = f.content_id WHERE d.volume_id = ?1 AND f.status = "
      "'present' AND {} ORDER BY d.path, f.name",
      store::kOutsideReserved);
}

}  // namespace

ObjectPlan plan_objects(Push& p, std::int64_t since_run) {
  store::Stmt st(p.db(), present_sql());
  st.bind(1, p.volume_id()).bind(2, since_run).bind(3, p.dest());
  ObjectPlan out;
  auto& plan = out.uploads;
  std::unordered_set<std::int64_t> seen;
  while (st.step()) {
    if (!seen.insert(st.i64(2)).second) continue;  // one source per content
    PlannedWrite w;
    w.path = store::join_path(st.bytes_str(0), st.bytes_str(1));
    w.content_id = st.i64(2);
    w.hash = st.digest(3);
    w.size = st.i64(4);
    w.mtime_ns = st.i64(5);
    if (st.i64(6) != 0) {
      plan.already_live += 1;
      if (st.i64(7) != 0) out.recorded.push_back(std::move(w));  // the delta relies on it: looked at
      continue;
    }
    plan.bytes += w.size;
    plan.writes.push_back(std::move(w));
  }
  return out;
}

namespace {

struct Landed {
  const PlannedWrite* w;
  std::optional<store::Measured> measured;
};

// What the push records of a copy it confirmed: a checksum only when it
// was measured from the medium or by the server, and never on a memory
// filesystem (right bytes that will not outlive a reboot).
std::optional<store::Measured> measured_of(const Push& p, const Item& it) {
  if (!p.volatile_fs.empty() || it.checksum.empty() || !(it.from_medium || it.by_server)) return std::nullopt;
  return store::Measured{it.algo, it.checksum, it.verified_at};
}

// An object already at its name: recorded when it holds the named bytes.
void confirm_existing(Push& p, const PlannedWrite& w, std::vector<Landed>& landed) {
  auto name = object_name(w.hash);
  auto st = p.t->stat(name);
  if (st.type == dest::EntryType::file && st.size == w.size) {
    auto rb = dest::read_back_blake3(*p.t, name);
    if (rb.bytes == w.size && rb.hash == w.hash) {
      std::optional<store::Measured> m;
      if (p.volatile_fs.empty()) m = store::Measured{"blake3", to_hex(rb.hash), now_ns()};
      landed.push_back({&w, m});
      return;
    }
  }
  p.report.failed += 1;
  p.file_error(w.path, fmt::format("{} exists at the destination and does not hold this content — squirrel never "
                                   "replaces it; inspect or remove it by hand, then sync again",
                                   name));
}

// Items whose object exists already leave the batch before staging.
void take_existing(Push& p, std::vector<Item>& batch, std::vector<Landed>& landed) {
  std::vector<std::string> names;
  for (const auto& it : batch) names.push_back(object_name(it.w->hash));
  auto stats = p.t->stat_many(names);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (stats[i].type == dest::EntryType::none) continue;
    batch[i].ok = false;
    confirm_existing(p, *batch[i].w, landed);
  }
}

// Moves each confirmed staged copy onto its object name (never replacing).
void move_into_place(Push& p, std::vector<Item>& batch, std::vector<Landed>& landed) {
  std::vector<char> raced(batch.size(), 0);
  run_in_flight(p, batch, p.in_flight, [&](Item& it) {
    try {
      p.t->rename(it.staged, object_name(it.w->hash));
    } catch (const dest::TransportError& e) {
      if (e.err() != EEXIST) throw;
      raced[static_cast<std::size_t>(&it - batch.data())] = 1;  // another push landed it first
      it.ok = false;
    }
  });
  report_all(p, batch);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (raced[i]) confirm_existing(p, *batch[i].w, landed);
    else if (batch[i].ok) landed.push_back({batch[i].w, measured_of(p, batch[i])});
  }
}

void record(Push& p, const std::vector<Landed>& landed) {
  if (landed.empty()) return;
  p.t->flush();  // a row names only an object whose name is durable
  store::Tx tx(p.db());
  for (const auto& l : landed) store::record_object(p.db(), l.w->content_id, p.dest(), p.run_id, l.measured);
  tx.commit();
  for (const auto& l : landed) {
    p.report.written += 1;
    p.report.bytes += l.w->size;
    p.files_done += 1;
    p.bytes_done += l.w->size;
  }
  p.progress(landed.back().w->path);
}

}  // namespace

namespace {

// A recorded object of a pack member is looked at when its pack is; here
// only the objects. Absent or resized: that content fails.
void look_at_recorded(Push& p, const std::vector<PlannedWrite>& recorded) {
  for (std::size_t i = 0; i < recorded.size(); i += dest::kReadBackGroupFiles) {
    std::size_t end = std::min(recorded.size(), i + dest::kReadBackGroupFiles);
    std::vector<std::string> names;
    for (std::size_t k = i; k < end; ++k) names.push_back(object_name(recorded[k].hash));
    auto stats = p.t->stat_many(names);
    for (std::size_t k = i; k < end; ++k) {
      const auto& s = stats[k - i];
      if (s.type == dest::EntryType::file && s.size == recorded[k].size) continue;
      if (s.type == dest::EntryType::none && !store::object_recorded(p.db(), recorded[k].content_id, p.dest())) continue;
      p.report.failed += 1;
      p.file_error(recorded[k].path, fmt::format("{} is recorded at the destination but {} there — run `squirrel verify "
                                                 "{}` to see what was lost",
                                                 names[k - i], s.type == dest::EntryType::none ? "is gone" : "changed",
                                                 p.dest()));
    }
  }
}

}  // namespace

void push_objects(Push& p, const ObjectPlan& op) {
  look_at_recorded(p, op.recorded);
  const auto& plan = op.uploads;
  p.files_total = static_cast<std::int64_t>(plan.writes.size());
  p.bytes_total = plan.bytes;
  if (!plan.writes.empty()) p.progress("");
  auto staged = [&p](const PlannedWrite& w) { return p.staging_dir(p.run_id) + "/" + to_hex(blake3(object_name(w.hash))); };
  std::size_t i = 0;
  // As in a mirror push: with more than one object in flight the next
  // batch is staged while this one is read back, moved and recorded.
  bool overlap = p.in_flight > 1;
  // A batch is one stat_many, one staging pass, one flush and one server
  // hash command: as large as a mirror push's (the spec's 64 costs a flush
  // per 64 small files).
  const auto per_batch = p.opts.batch_files;
  auto batch = next_batch(p, plan, i, per_batch, staged);
  std::vector<Landed> landed;
  take_existing(p, batch, landed);
  stage(p, batch);
  while (!batch.empty()) {
    finish_stage(p, batch);
    auto next = next_batch(p, plan, i, per_batch, staged);
    std::vector<Landed> next_landed;
    take_existing(p, next, next_landed);
    {
      std::optional<StageAhead> ahead;
      if (overlap && !next.empty()) ahead.emplace(p, next);
      read_back(p, batch);
      move_into_place(p, batch, landed);
      record(p, landed);
    }
    if (!overlap) stage(p, next);
    batch = std::move(next);
    landed = std::move(next_landed);
  }
}

bool all_contents_fingerprinted(Push& p) {
  return store::volume_contents_held(p.db(), p.volume_id(), p.dest(), true);
}

}  // namespace sq::engine::sync
