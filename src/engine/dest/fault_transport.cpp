// A transport that fails on purpose (tests): a crash, a power cut, an error
// or a stall (a call that hangs, then fails or completes late) at a chosen call, so every crash point of a layout can be
// exercised. A power cut is simulated by undoing, in reverse order, what the
// calls since the last completed flush did; the inner transport's own stat
// and list calls used for that bookkeeping are not counted as calls.
#include <fmt/format.h>

#include "core/text.hpp"
#include "engine/dest/transport.hpp"

namespace sq::dest {

namespace {

// The directories on the way to `name` (and `name` itself when
// `include_self`), outermost first, that do not exist yet.
std::vector<std::string> missing_dirs(Transport& inner, const std::string& name, bool include_self) {
  std::vector<std::string> out;
  if (!is_clean_name(name)) return out;
  std::size_t pos = 0;
  for (;;) {
    auto slash = name.find('/', pos);
    if (slash == std::string::npos && !include_self) break;
    std::string dir = name.substr(0, slash);
    // Once one is missing, everything below it is too.
    bool missing = !out.empty();
    if (!missing) {
      try {
        missing = inner.stat(dir).type == EntryType::none;
      } catch (const TransportError&) {
        return out;  // a symlink or file in the way: the call itself will fail
      }
    }
    if (missing) out.push_back(dir);
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return out;
}

const char* kDead = "simulated crash: the process is gone, no further transport call can run";

}  // namespace

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, FaultPlan plan)
    : inner_(std::move(inner)), plan_(std::move(plan)) {}

void FaultTransport::enter() {
  if (crashed_) throw SimulatedCrash(kDead);
  ++calls_;
  if (plan_.kind == FaultPlan::Kind::none || calls_ != plan_.at_call) return;
  switch (plan_.kind) {
    case FaultPlan::Kind::none:
      return;
    case FaultPlan::Kind::crash:
      crashed_ = true;
      throw SimulatedCrash(fmt::format("simulated crash at transport call {}", calls_));
    case FaultPlan::Kind::power_cut:
      power_cut();
      return;  // power_cut() throws
    case FaultPlan::Kind::error:
      throw TransportError(plan_.err, fmt::format("simulated failure at transport call {}", calls_));
    case FaultPlan::Kind::stall:
      // The call hangs for as long as the test says. Other threads' calls
      // wait behind it (mu_ is held), as they would on a hung disk.
      if (plan_.on_stall) plan_.on_stall();
      if (plan_.stall_completes) return;
      throw TransportError(ETIMEDOUT, fmt::format("transport call {} made no progress (simulated stall)", calls_));
  }
}

// Undoes every unflushed change, newest first, then dies. Undo is best
// effort (as the disk would be): a step that cannot be undone is named in
// the crash message so a test that depends on it sees why.
void FaultTransport::power_cut() {
  crashed_ = true;
  std::string incomplete;
  for (auto it = unflushed_.rbegin(); it != unflushed_.rend(); ++it) {
    try {
      switch (it->op) {
        case Undo::Op::put:
          if (inner_->stat(it->a).type != EntryType::none) inner_->remove(it->a);
          break;
        case Undo::Op::rename:
          if (inner_->stat(it->b).type != EntryType::none) inner_->rename(it->b, it->a);
          break;
        case Undo::Op::mkdir:
          if (inner_->stat(it->a).type == EntryType::directory && inner_->list(it->a).empty()) inner_->remove(it->a);
          break;
      }
    } catch (const TransportError& e) {
      incomplete += fmt::format("; undo incomplete: {}", e.what());
    }
  }
  unflushed_.clear();
  throw SimulatedCrash(fmt::format("simulated power cut at transport call {}{}", calls_, incomplete));
}

// Journals the directories a call is about to create. They are journaled
// even if the call then fails, since it may have created some of them
// before failing; undo removes only directories that are still empty.
void FaultTransport::journal_new_dirs(const std::string& name, bool include_self) {
  for (auto& dir : missing_dirs(*inner_, name, include_self)) unflushed_.push_back({Undo::Op::mkdir, dir, {}});
}

Stat FaultTransport::stat(const std::string& name) {
  std::lock_guard lock(mu_);
  enter();
  return inner_->stat(name);
}

std::vector<Entry> FaultTransport::list(const std::string& dir) {
  std::lock_guard lock(mu_);
  enter();
  return inner_->list(dir);
}

PutResult FaultTransport::put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) {
  std::lock_guard lock(mu_);
  enter();
  journal_new_dirs(name, false);
  auto result = inner_->put(name, read, mtime_ns);
  unflushed_.push_back({Undo::Op::put, name, {}});
  return result;
}

std::unique_ptr<Reader> FaultTransport::get(const std::string& name) {
  std::lock_guard lock(mu_);
  enter();
  return inner_->get(name);
}

ReadBack FaultTransport::read_back(const std::string& name) {
  std::lock_guard lock(mu_);
  enter();
  return inner_->read_back(name);
}

void FaultTransport::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  enter();
  journal_new_dirs(to, false);
  inner_->rename(from, to);
  unflushed_.push_back({Undo::Op::rename, from, to});
}

// Removals are not journaled: a power cut does not bring removed bytes back
// (the pessimistic assumption for a layout's invariants).
void FaultTransport::remove(const std::string& name) {
  std::lock_guard lock(mu_);
  enter();
  inner_->remove(name);
}

void FaultTransport::mkdirs(const std::string& dir) {
  std::lock_guard lock(mu_);
  enter();
  journal_new_dirs(dir, true);
  inner_->mkdirs(dir);
}

void FaultTransport::flush() {
  std::lock_guard lock(mu_);
  enter();
  inner_->flush();
  unflushed_.clear();
}

}  // namespace sq::dest
