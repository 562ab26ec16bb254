// Restoring a list of files in batches. Within a batch, workers take whole
// folders (so two threads rarely contend for one directory's lock) and
// stream each file into a verified temp beside its target; then one
// syncfs per file system makes every temp of the batch durable at once
// (a per-file fsync is a journal commit each); only then are the temps
// renamed onto their names. Every file still goes through the one safe
// write path, and no name ever holds unflushed bytes.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "engine/restore/internal.hpp"

namespace sq::engine::restore_detail {

namespace {

// A batch ends at whichever limit comes first: the files a killed run may
// leave as temps, and the bytes that wait in the page cache for one flush.
constexpr std::size_t kBatchFiles = 2048;
constexpr std::int64_t kBatchBytes = 512 << 20;
// A folder with more files than this is split, so one big folder still
// keeps every worker busy.
constexpr std::size_t kChunkFiles = 64;

std::size_t files_in_flight(const RestoreOptions& opts) {
  if (opts.files_in_flight > 0) return opts.files_in_flight;
  // More than the cores: a file waiting for the device uses no CPU, and
  // several direct writes in flight keep the device's queue full.
  return std::clamp<std::size_t>(2 * std::thread::hardware_concurrency(), 4, 8);
}

// Runs fn(task, worker) for every task on up to `threads` threads. The
// first exception that escapes fn stops the handing out of tasks and is
// rethrown once every thread is done.
template <class Fn>
void in_parallel(std::size_t tasks, std::size_t threads, const Fn& fn) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex fatal_mu;
  auto work = [&](std::size_t worker) {
    while (!stop) {
      std::size_t i = next++;
      if (i >= tasks) return;
      try {
        fn(i, worker);
      } catch (...) {
        std::lock_guard lock(fatal_mu);
        if (!fatal) fatal = std::current_exception();
        stop = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t k = 1; k < std::min(threads, tasks); ++k) helpers.emplace_back(work, k);
  work(0);
  for (auto& th : helpers) th.join();
  if (fatal) std::rethrow_exception(fatal);
}

// Consecutive items of one folder, at most kChunkFiles of them.
struct Chunk {
  std::string folder;
  std::vector<const RestoreItem*> items;
};

// A file whose verified bytes wait in `tmp` beside its target.
struct Staged {
  const RestoreItem* it;
  std::string name, tmp;
  bool displace_first;
  std::int64_t bytes;
};

// Files are grouped by folder, so each folder is opened once per batch.
// Pack members keep their order (they come sorted as they lie in their
// packs) and form chunks of consecutive members of one folder: handed out
// in order, a pack is streamed about once per reader in flight.
std::vector<Chunk> chunks_of(const std::vector<RestoreItem>& items, std::size_t begin, std::size_t end) {
  std::map<std::string, std::vector<const RestoreItem*>> by_folder;
  std::vector<Chunk> members;
  for (std::size_t i = begin; i < end; ++i) {
    auto folder = store::split_path(items[i].path).first;
    if (items[i].member_offset < 0) {
      by_folder[folder].push_back(&items[i]);
    } else if (!members.empty() && members.back().folder == folder && members.back().items.size() < kChunkFiles) {
      members.back().items.push_back(&items[i]);
    } else {
      members.push_back({folder, {&items[i]}});
    }
  }
  std::vector<Chunk> out;
  for (auto& [folder, list] : by_folder)
    for (std::size_t i = 0; i < list.size(); i += kChunkFiles)
      out.push_back({folder, {list.begin() + i, list.begin() + std::min(list.size(), i + kChunkFiles)}});
  out.insert(out.end(), std::make_move_iterator(members.begin()), std::make_move_iterator(members.end()));
  return out;
}

// The end of the batch that starts at `begin`.
std::size_t batch_end(const std::vector<RestoreItem>& items, std::size_t begin) {
  std::int64_t bytes = 0;
  std::size_t end = begin;
  while (end < items.size() && end - begin < kBatchFiles && (end == begin || bytes < kBatchBytes))
    bytes += std::max<std::int64_t>(items[end++].size, 0);
  return end;
}

class Restorer {
 public:
  Restorer(const RestoreTarget& target, RestoreReport& rep) : tg_(target), rep_(rep) {
    threads_ = files_in_flight(target.opts);
    for (std::size_t k = 0; k < threads_; ++k) bufs_.push_back(std::make_unique<CopyBuffer>(kCopyBuffer));
  }

  // The plan, announced before the first file so a front end's clock and
  // estimate start with the run.
  void start(const std::vector<RestoreItem>& items) {
    std::lock_guard lock(mu_);
    for (const auto& it : items) bytes_total_ += planned_bytes(it);
    files_total_ = static_cast<std::int64_t>(items.size());
    if (files_total_ > 0) event(RestoreEvent::Type::progress, "", "");
  }

  // Stages the batch's files, makes them durable, then gives them their names.
  void run_batch(const std::vector<RestoreItem>& items, std::size_t begin, std::size_t end) {
    auto chunks = chunks_of(items, begin, end);
    std::vector<std::vector<Staged>> staged(chunks.size());
    try {
      in_parallel(chunks.size(), threads_,
                  [&](std::size_t i, std::size_t w) { stage(chunks[i], *bufs_[w], staged[i]); });
    } catch (...) {
      // The run stops: the temps it made are its own to remove.
      for (std::size_t i = 0; i < chunks.size(); ++i) discard(chunks[i].folder, staged[i]);
      throw;
    }
    int flush_error = make_durable();
    in_parallel(chunks.size(), threads_,
                [&](std::size_t i, std::size_t) { settle(chunks[i].folder, staged[i], flush_error); });
  }

  void flush_directories();
  std::vector<store::OffloadFlip> take_revived() { return std::move(revive_); }

 private:
  // Progress counts the bytes each file was expected to have, so done
  // reaches total whether a file was fetched, already there, or failed.
  static std::int64_t planned_bytes(const RestoreItem& it) { return std::max<std::int64_t>(it.size, 0); }

  void stage(const Chunk& c, CopyBuffer& buf, std::vector<Staged>& out);
  void discard(const std::string& folder, const std::vector<Staged>& staged);
  std::optional<Staged> stage_one(int parent, const RestoreItem& it, CopyBuffer& buf);
  std::int64_t fetch_any_copy(int parent, const std::string& tmp, const RestoreItem& it, CopyBuffer& buf);
  void note_device(int dir);
  int make_durable();
  void settle(const std::string& folder, const std::vector<Staged>& staged, int flush_error);
  void commit(int parent, const std::string& folder, const Staged& s);
  void recovered(const RestoreItem& it, const Error& first, const std::string& other);
  void displace(int parent, const std::string& name, const std::string& path);
  void fail(const RestoreItem& it, const std::string& message, bool mismatch = false);
  void done(const RestoreItem& it, std::int64_t bytes);

  // Caller holds mu_. Every item is settled exactly once: counted done for
  // the progress, whatever became of it.
  void settled(const RestoreItem& it) {
    files_done_ += 1;
    bytes_done_ += planned_bytes(it);
    event(RestoreEvent::Type::progress, it.path, "");
  }
  // Caller holds mu_.
  void event(RestoreEvent::Type type, const std::string& path, const std::string& msg) {
    if (tg_.listener) tg_.listener({type, path, msg, files_done_, files_total_, bytes_done_, bytes_total_});
  }
  void dirty(const std::string& folder) {
    std::lock_guard lock(mu_);
    dirty_.insert(folder);
  }

  const RestoreTarget& tg_;
  RestoreReport& rep_;
  std::size_t threads_ = 1;
  std::vector<std::unique_ptr<CopyBuffer>> bufs_;  // one per worker
  std::mutex mu_;  // guards rep_, revive_, dirty_, devices_ and listener calls
  std::vector<store::OffloadFlip> revive_;
  std::set<std::string> dirty_;  // folders (relative to the target) that gained or lost a name
  // One directory per file system written to, opened before this run wrote
  // there, so its syncfs reports every write-back error since.
  std::map<dev_t, Fd> devices_;
  std::int64_t files_done_ = 0, files_total_ = 0, bytes_done_ = 0, bytes_total_ = 0;  // guarded by mu_
};

// Stages a chunk's files into temps, appending each to `out` as soon as it
// is there; the folder is opened (created as needed) once, at the first
// file that needs it.
void Restorer::stage(const Chunk& c, CopyBuffer& buf, std::vector<Staged>& out) {
  Fd parent;
  std::string parent_error;
  for (const RestoreItem* it : c.items) {
    if (it->source.empty()) {
      fail(*it, "no recorded copy at the destination — sync it first");
      continue;
    }
    if (!parent && parent_error.empty()) try {
        parent = open_parent(tg_.base, it->path);
        note_device(parent.get());
      } catch (const Error& e) {
        parent_error = e.what();
      }
    if (!parent) {
      fail(*it, parent_error);
      continue;
    }
    if (auto s = stage_one(parent.get(), *it, buf)) out.push_back(std::move(*s));
  }
}

void Restorer::discard(const std::string& folder, const std::vector<Staged>& staged) {
  if (staged.empty()) return;
  Fd parent = open_existing_dir(tg_.base, folder);
  for (const auto& s : staged)
    if (parent) ::unlinkat(parent.get(), s.tmp.c_str(), 0);
}

std::optional<Staged> Restorer::stage_one(int parent, const RestoreItem& it, CopyBuffer& buf) {
  auto name = store::split_path(it.path).second;
  struct stat st {};
  bool exists = ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && S_ISREG(st.st_mode) && already_correct(parent, name, it, buf)) {
    std::lock_guard lock(mu_);
    rep_.already_correct += 1;
    if (it.revive && tg_.revive_rows) revive_.push_back({it.path, it.content_id});
    settled(it);
    return std::nullopt;
  }
  if (exists && !tg_.opts.in_place) {
    std::lock_guard lock(mu_);
    rep_.refused_existing += 1;
    event(RestoreEvent::Type::warning, it.path, "something else is there; left alone (use --in-place)");
    settled(it);
    return std::nullopt;
  }
  std::string tmp = temp_name(tg_.run_id, name);
  try {
    return Staged{&it, name, tmp, exists, fetch_any_copy(parent, tmp, it, buf)};
  } catch (const MismatchError& e) {
    fail(it, e.what(), true);
  } catch (const Error& e) {
    fail(it, e.what());
  }
  return std::nullopt;
}

// The file's own copy first, then every other copy of its content. A copy
// that fails (damaged, unreadable, gone) is reported and the next tried; the
// file fails only when none holds its bytes, with the first copy's error.
std::int64_t Restorer::fetch_any_copy(int parent, const std::string& tmp, const RestoreItem& it, CopyBuffer& buf) {
  try {
    return fetch_verified(tg_.t, parent, tmp, it, buf, tg_.cursors);
  } catch (const Error& first) {
    for (const auto& other : it.others) {
      RestoreItem alt = it;
      alt.source = other;
      try {
        auto bytes = fetch_verified(tg_.t, parent, tmp, alt, buf, tg_.cursors);
        recovered(it, first, other);
        return bytes;
      } catch (const Error&) {
        // the next copy, if any; the first copy's error is the one reported
      }
    }
    throw;
  }
}

void Restorer::note_device(int dir) {
  struct stat st {};
  if (::fstat(dir, &st) != 0) fail_errno("cannot inspect the folder being restored into", errno);
  std::lock_guard lock(mu_);
  if (devices_.count(st.st_dev)) return;
  Fd kept(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!kept) fail_errno("cannot keep the folder being restored into open", errno);
  devices_.emplace(st.st_dev, std::move(kept));
}

// One syncfs per file system flushes every staged temp's bytes and inode;
// 0 when all are durable, else the errno of the first failure.
int Restorer::make_durable() {
  for (const auto& [dev, fd] : devices_) {
    int err = tg_.opts.flush_filesystem ? tg_.opts.flush_filesystem(fd.get()) : (::syncfs(fd.get()) == 0 ? 0 : errno);
    if (err != 0) return err;
  }
  return 0;
}

// Gives each staged temp its name, or removes it when the batch could not
// be made durable or the name cannot be given.
void Restorer::settle(const std::string& folder, const std::vector<Staged>& staged, int flush_error) {
  if (staged.empty()) return;
  Fd parent = open_existing_dir(tg_.base, folder);
  for (const auto& s : staged) {
    if (!parent) {
      fail(*s.it, "its folder vanished while it was restored — run the restore again");
      continue;
    }
    try {
      if (flush_error) fail_errno("cannot flush the restored file — run the restore again", flush_error);
      commit(parent.get(), folder, s);
    } catch (const Error& e) {
      ::unlinkat(parent.get(), s.tmp.c_str(), 0);
      fail(*s.it, e.what());
    }
  }
}

// Moves what is in the way to history, then renames without replacing.
void Restorer::commit(int parent, const std::string& folder, const Staged& s) {
  if (s.displace_first) displace(parent, s.name, s.it->path);
  move_noreplace(parent, s.tmp, parent, s.name);
  dirty(folder);
  done(*s.it, s.bytes);
}

void Restorer::recovered(const RestoreItem& it, const Error& first, const std::string& other) {
  std::lock_guard lock(mu_);
  if (dynamic_cast<const MismatchError*>(&first)) rep_.mismatched += 1;
  rep_.other_copy += 1;
  event(RestoreEvent::Type::warning, it.path,
        fmt::format("its copy {} failed ({}); restored from {} instead — run `squirrel verify {}` to record the "
                    "damaged copy",
                    it.source, first.what(), other, rep_.from));
}

// Moves what is in the way to .squirrel-restore-history/run-<id>/<path>.
void Restorer::displace(int parent, const std::string& name, const std::string& path) {
  std::string hist = fmt::format(".squirrel-restore-history/run-{}/{}", tg_.run_id, path);
  Fd hp = open_parent(tg_.base, hist);
  move_noreplace(parent, name, hp.get(), store::split_path(hist).second);
  dirty(store::split_path(hist).first);
  std::lock_guard lock(mu_);
  rep_.displaced += 1;
}

void Restorer::fail(const RestoreItem& it, const std::string& message, bool mismatch) {
  std::lock_guard lock(mu_);
  if (it.source.empty()) {
    rep_.no_copy += 1;
  } else {
    rep_.failed += 1;
    rep_.mismatched += mismatch ? 1 : 0;
  }
  event(RestoreEvent::Type::file_error, it.path, message);
  settled(it);
}

void Restorer::done(const RestoreItem& it, std::int64_t bytes) {
  std::lock_guard lock(mu_);
  rep_.restored += 1;
  rep_.bytes += bytes;
  rep_.unnamed += it.hash ? 0 : 1;
  if (it.revive && tg_.revive_rows) revive_.push_back({it.path, it.content_id});
  settled(it);
}
// Every folder that gained a name, and every folder above it (it may have
// been created by this run), is flushed once, so the run is reported done
// only when the names are durable. Files were flushed before their rename.
void Restorer::flush_directories() {
  std::set<std::string> all;
  for (std::string f : dirty_) {
    all.insert(f);
    while (!f.empty()) {
      auto slash = f.rfind('/');
      f = slash == std::string::npos ? "" : f.substr(0, slash);
      all.insert(f);
    }
  }
  for (const auto& folder : all) {
    Fd dir = open_existing_dir(tg_.base, folder);
    if (dir && ::fsync(dir.get()) == 0) continue;
    rep_.failed += 1;
    event(RestoreEvent::Type::file_error, folder.empty() ? "." : folder,
          errno_message("cannot flush the restored directory — run the restore again", errno));
  }
}

}  // namespace

std::vector<store::OffloadFlip> restore_items(const RestoreTarget& target, const std::vector<RestoreItem>& items,
                                              RestoreReport& rep) {
  Restorer r(target, rep);
  r.start(items);
  for (std::size_t begin = 0; begin < items.size();) {
    std::size_t end = batch_end(items, begin);
    r.run_batch(items, begin, end);
    begin = end;
  }
  r.flush_directories();
  return r.take_revived();
}

}  // namespace sq::engine::restore_detail
