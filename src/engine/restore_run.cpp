// Restoring a list of files, a few at a time: while one file waits for its
// fsync another is being read and hashed, so the device and the CPU work
// at once. Every file still goes through the one safe write path.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "engine/restore_internal.hpp"

namespace sq::engine::restore_detail {

namespace {

std::size_t files_in_flight(const RestoreOptions& opts) {
  if (opts.files_in_flight > 0) return opts.files_in_flight;
  // More than the cores: a file waiting for the device uses no CPU, and
  // several direct writes in flight keep the device's queue full.
  return std::clamp<std::size_t>(2 * std::thread::hardware_concurrency(), 4, 8);
}

class Restorer {
 public:
  Restorer(const RestoreTarget& target, RestoreReport& rep) : tg_(target), rep_(rep) {}

  // The plan, announced before the first file so a front end's clock and
  // estimate start with the run.
  void start(const std::vector<RestoreItem>& items) {
    std::lock_guard lock(mu_);
    for (const auto& it : items) bytes_total_ += planned_bytes(it);
    files_total_ = static_cast<std::int64_t>(items.size());
    if (files_total_ > 0) event(RestoreEvent::Type::progress, "", "");
  }

  // Restores one item; per-file errors are counted, anything else escapes.
  // Whatever became of it, the item counts as done for the progress.
  void attempt(const RestoreItem& it, CopyBuffer& buf) {
    try_one(it, buf);
    std::lock_guard lock(mu_);
    files_done_ += 1;
    bytes_done_ += planned_bytes(it);
    event(RestoreEvent::Type::progress, it.path, "");
  }

  void flush_directories();
  std::vector<store::OffloadFlip> take_revived() { return std::move(revive_); }

 private:
  // Progress counts the bytes each file was expected to have, so done
  // reaches total whether a file was fetched, already there, or failed.
  static std::int64_t planned_bytes(const RestoreItem& it) { return std::max<std::int64_t>(it.size, 0); }

  void try_one(const RestoreItem& it, CopyBuffer& buf) {
    if (it.source.empty()) {
      std::lock_guard lock(mu_);
      rep_.no_copy += 1;
      return event(RestoreEvent::Type::file_error, it.path, "no recorded copy at the destination — sync it first");
    }
    try {
      one(it, buf);
    } catch (const MismatchError& e) {
      std::lock_guard lock(mu_);
      rep_.mismatched += 1;
      rep_.failed += 1;
      event(RestoreEvent::Type::file_error, it.path, e.what());
    } catch (const Error& e) {
      std::lock_guard lock(mu_);
      rep_.failed += 1;
      event(RestoreEvent::Type::file_error, it.path, e.what());
    }
  }

  void one(const RestoreItem& it, CopyBuffer& buf);
  void place(int parent, const std::string& name, bool displace_first, const RestoreItem& it, CopyBuffer& buf);
  std::int64_t fetch_any_copy(int parent, const std::string& tmp, const RestoreItem& it, CopyBuffer& buf);
  void recovered(const RestoreItem& it, const Error& first, const std::string& other);
  void displace(int parent, const std::string& name, const std::string& path);
  void done(const RestoreItem& it, std::int64_t bytes);

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
  std::mutex mu_;  // guards rep_, revive_, dirty_ and listener calls
  std::vector<store::OffloadFlip> revive_;
  std::set<std::string> dirty_;  // folders (relative to the target) that gained or lost a name
  std::int64_t files_done_ = 0, files_total_ = 0, bytes_done_ = 0, bytes_total_ = 0;  // guarded by mu_
};

void Restorer::one(const RestoreItem& it, CopyBuffer& buf) {
  auto name = store::split_path(it.path).second;
  Fd parent = open_parent(tg_.base, it.path);
  struct stat st {};
  bool exists = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && S_ISREG(st.st_mode) && already_correct(parent.get(), name, it, buf)) {
    std::lock_guard lock(mu_);
    rep_.already_correct += 1;
    if (it.revive && tg_.revive_rows) revive_.push_back({it.path, it.content_id});
    return;
  }
  if (exists && !tg_.opts.in_place) {
    std::lock_guard lock(mu_);
    rep_.refused_existing += 1;
    return event(RestoreEvent::Type::warning, it.path, "something else is there; left alone (use --in-place)");
  }
  place(parent.get(), name, exists, it, buf);
}

// Fetch into the temp name, move what is in the way to history, then
// rename without replacing. The name gains the file only after its bytes
// were verified and flushed.
void Restorer::place(int parent, const std::string& name, bool displace_first, const RestoreItem& it,
                     CopyBuffer& buf) {
  std::string tmp = temp_name(tg_.run_id, name);
  auto bytes = fetch_any_copy(parent, tmp, it, buf);
  try {
    if (displace_first) displace(parent, name, it.path);
    move_noreplace(parent, tmp, parent, name);
  } catch (...) {
    ::unlinkat(parent, tmp.c_str(), 0);
    throw;
  }
  dirty(store::split_path(it.path).first);
  done(it, bytes);
}

// The file's own copy first, then every other copy of its content. A copy
// that fails (damaged, unreadable, gone) is reported and the next tried; the
// file fails only when none holds its bytes, with the first copy's error.
std::int64_t Restorer::fetch_any_copy(int parent, const std::string& tmp, const RestoreItem& it, CopyBuffer& buf) {
  try {
    return fetch_verified(tg_.t, parent, tmp, it, buf);
  } catch (const Error& first) {
    for (const auto& other : it.others) {
      RestoreItem alt = it;
      alt.source = other;
      try {
        auto bytes = fetch_verified(tg_.t, parent, tmp, alt, buf);
        recovered(it, first, other);
        return bytes;
      } catch (const Error&) {
        // the next copy, if any; the first copy's error is the one reported
      }
    }
    throw;
  }
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

void Restorer::done(const RestoreItem& it, std::int64_t bytes) {
  std::lock_guard lock(mu_);
  rep_.restored += 1;
  rep_.bytes += bytes;
  rep_.unnamed += it.hash ? 0 : 1;
  if (it.revive && tg_.revive_rows) revive_.push_back({it.path, it.content_id});
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
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex fatal_mu;
  auto work = [&] {
    CopyBuffer buf(kCopyBuffer);
    while (!stop) {
      std::size_t i = next++;
      if (i >= items.size()) return;
      try {
        r.attempt(items[i], buf);
      } catch (...) {
        std::lock_guard lock(fatal_mu);
        if (!fatal) fatal = std::current_exception();
        stop = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t k = 1; k < std::min(files_in_flight(target.opts), items.size()); ++k) helpers.emplace_back(work);
  work();
  for (auto& th : helpers) th.join();
  if (fatal) std::rethrow_exception(fatal);
  r.flush_directories();
  return r.take_revived();
}

}  // namespace sq::engine::restore_detail
