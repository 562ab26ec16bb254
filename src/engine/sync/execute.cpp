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
#include "engine/sync/push.hpp"
#include "store/files.hpp"
#include "store/remote_paths.hpp"

namespace sq::engine::sync {

namespace {

struct Item {
  const PlannedWrite* w = nullptr;
  bool ok = true;
  std::string checksum;
  std::int64_t verified_at = 0;
  // Set by the in-flight phases, reported afterwards on the driver thread.
  enum class Trouble { none, drift, error } trouble = Trouble::none;
  std::string message;
  bool from_medium = true;      // the read-back came from the device, not the page cache
  bool by_server = false;       // the destination's server hashed the stored bytes
  std::string algo;             // of checksum
  std::string sent_checksum;    // the server's algorithm over the bytes sent, when not BLAKE3
  std::int64_t stored_mtime = 0;
  std::exception_ptr fatal;     // a stall or anything but an Error (a simulated crash) must reach the driver
};

void drop(Push& p, Item& it, const std::string& msg) {
  it.ok = false;
  p.report.failed += 1;
  p.file_error(it.w->path, msg);
}

void report_trouble(Push& p, Item& it) {
  auto trouble = std::exchange(it.trouble, Item::Trouble::none);
  if (trouble == Item::Trouble::error) return drop(p, it, it.message);
  if (trouble != Item::Trouble::drift) return;
  it.ok = false;
  p.report.drift += 1;
  p.warn(it.w->path, "changed since it was indexed; not stored under the indexed hash — re-index and sync again");
}

// Runs `step` on every item still ok, with up to `width` items in flight,
// each on a helper thread while this one waits. A step touches only its
// item and the transport (which is thread-safe); what it found stays in the
// item until report_all(). A helper whose transport call stalls is left
// behind (it never touches these items again) and StallError ends the push.
template <class Step>
void run_in_flight(Push& p, std::vector<Item>& items, std::size_t width, Step step) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next++) < items.size();) {
      Item& it = items[i];
      if (!it.ok) continue;
      try {
        step(it);
      } catch (const dest::StallError&) {
        it.fatal = std::current_exception();  // a hung destination stops the push, not just this path
      } catch (const Error& e) {
        it.trouble = Item::Trouble::error;
        it.message = e.what();
      } catch (...) {
        it.fatal = std::current_exception();
      }
    }
  };
  dest::HelperThreads helpers(*p.raw);
  for (std::size_t t = 0; t < std::min(width, items.size()); ++t) helpers.spawn(worker);
  helpers.wait();
}

// Reports what the steps found, in plan order, on the driver thread; a
// simulated crash or a stalled call in any step ends the push here.
void report_all(Push& p, std::vector<Item>& items) {
  for (auto& it : items)
    if (it.fatal) std::rethrow_exception(it.fatal);
  for (auto& it : items) report_trouble(p, it);
}

template <class Step>
void in_flight(Push& p, std::vector<Item>& items, std::size_t width, Step step) {
  run_in_flight(p, items, width, step);
  report_all(p, items);
}

void stage_one(Push& p, Item& it) {
  const auto& w = *it.w;
  int fd = open_beneath(p.vol.root.get(), w.path, O_RDONLY);
  if (fd < 0) throw Error(ErrorKind::io, fmt::format("cannot read the source: {}", std::strerror(-fd)));
  Fd src(fd);
  auto put = p.t->put(p.staging_for(w.path, p.run_id),
                      [&](char* buf, std::size_t len) {
                        for (;;) {
                          ssize_t n = ::read(fd, buf, len);
                          if (n >= 0) return static_cast<std::size_t>(n);
                          if (errno != EINTR) fail_errno("reading the source", errno);
                        }
                      },
                      w.mtime_ns);
  if (put.bytes != w.size || put.hash != w.hash) it.trouble = Item::Trouble::drift;
  it.sent_checksum = put.sent_checksum;
  it.stored_mtime = put.mtime_ns;
}

// Streams the batch into staging; finish_stage() reports and flushes.
void stage(Push& p, std::vector<Item>& items) {
  run_in_flight(p, items, p.in_flight, [&](Item& it) { stage_one(p, it); });
}

void finish_stage(Push& p, std::vector<Item>& items) {
  report_all(p, items);
  p.t->flush();
}

void take_read_back(Item& it, const dest::ReadBack& rb) {
  if (rb.bytes != it.w->size || (rb.measured() && !rb.matches(it.w->hash, it.sent_checksum))) {
    it.trouble = Item::Trouble::error;
    it.message = rb.by_server ? "the server's hash of the stored copy does not match what was sent — its disk may be "
                                "failing"
                              : "the copy read back from the destination does not match — the disk may be failing";
    return;
  }
  it.from_medium = rb.from_medium;
  it.by_server = rb.by_server;
  if (!rb.measured()) return;  // the destination cannot look at its bytes: nothing is claimed
  it.algo = rb.algo;
  it.checksum = rb.checksum;
  it.verified_at = now_ns();
}

// A direct read mostly waits for the device and costs little CPU, so more
// of them are kept in flight than stagings.
constexpr std::size_t kReadBacksPerStaging = 4;

void read_back_one(Push& p, Item& it) { take_read_back(it, p.t->read_back(p.staging_for(it.w->path, p.run_id))); }

// A server's hash command is asked for several copies at once (see
// dest::kReadBackGroupBytes). A failure fails every copy of its group.
void read_back_group(Push& p, const std::vector<Item*>& group) {
  std::vector<std::string> names;
  for (auto* it : group) names.push_back(p.staging_for(it->w->path, p.run_id));
  try {
    auto rbs = p.t->read_back_many(names);
    for (std::size_t i = 0; i < group.size(); ++i) take_read_back(*group[i], rbs[i]);
  } catch (const dest::StallError&) {
    group.front()->fatal = std::current_exception();
  } catch (const Error& e) {
    for (auto* it : group) {
      it->trouble = Item::Trouble::error;
      it->message = e.what();
    }
  } catch (...) {
    group.front()->fatal = std::current_exception();
  }
}

void read_back_on_server(Push& p, std::vector<Item>& items) {
  std::vector<Item*> live;
  for (auto& it : items)
    if (it.ok) live.push_back(&it);
  std::int64_t live_bytes = 0;
  for (const auto* it : live) live_bytes += it->w->size;
  // Starting the server's command costs more than hashing a small file: a
  // batch of small files is one group; big ones are spread over up to
  // in_flight groups, so the server's cores hash in parallel.
  auto width = static_cast<std::size_t>(
      std::clamp<std::int64_t>((live_bytes + dest::kReadBackGroupBytes - 1) / dest::kReadBackGroupBytes, 1,
                               static_cast<std::int64_t>(p.in_flight)));
  std::size_t per = std::max<std::size_t>(1, (live.size() + width - 1) / width);
  std::vector<std::vector<Item*>> groups;
  for (std::size_t i = 0; i < live.size(); i += per)
    groups.emplace_back(live.begin() + static_cast<std::ptrdiff_t>(i),
                        live.begin() + static_cast<std::ptrdiff_t>(std::min(live.size(), i + per)));
  {
    dest::HelperThreads helpers(*p.raw);
    for (const auto& g : groups) helpers.spawn([&p, &g] { read_back_group(p, g); });
    helpers.wait();
  }
  report_all(p, items);
}

// A copy hashed from the page cache proves less than one read from the
// device: one such copy makes the whole push claim the weaker method.
void read_back(Push& p, std::vector<Item>& items) {
  if (p.raw->hashes_on_server()) read_back_on_server(p, items);
  else in_flight(p, items, p.in_flight * kReadBacksPerStaging, [&](Item& it) { read_back_one(p, it); });
  for (const auto& it : items)
    if (it.ok && !it.from_medium && !it.by_server) p.all_read_back = false;
}

}  // namespace

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
            [&](Item& it) { p.t->rename(p.staging_for(it.w->path, p.run_id), p.in_volume(it.w->path)); });
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

std::vector<Item> next_batch(const Push& p, const Plan& plan, std::size_t& i) {
  std::vector<Item> batch;
  std::int64_t bytes = 0;
  while (i < plan.writes.size() && batch.size() < p.opts.batch_files && (batch.empty() || bytes < p.opts.batch_bytes)) {
    bytes += plan.writes[i].size;
    Item item;
    item.w = &plan.writes[i++];
    batch.push_back(std::move(item));
  }
  return batch;
}

// Stages `batch` on a thread of its own while the driver finishes the
// previous batch. The stage touches only its items and the transport,
// never the database; the driver reports what it found once it joins.
class StageAhead {
 public:
  // `batch` is not empty: a failure outside the steps lands in its first item.
  StageAhead(Push& p, std::vector<Item>& batch)
      : thread_([&p, &batch] {
          try {
            stage(p, batch);
          } catch (...) {
            batch.front().fatal = std::current_exception();
          }
        }) {}
  ~StageAhead() { thread_.join(); }
  StageAhead(const StageAhead&) = delete;
  StageAhead& operator=(const StageAhead&) = delete;

 private:
  std::thread thread_;
};

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
  std::vector<Item> batch = next_batch(p, plan, i);
  stage(p, batch);
  while (!batch.empty()) {
    finish_stage(p, batch);
    std::vector<Item> next = next_batch(p, plan, i);
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
