// Stall detection for native transports (spec sync-offload-restore.md §6.5).
// A call to a hung disk or mount can block in the kernel for ever, and no
// signal ends it. So a call runs on a worker thread while the caller waits
// for it as long as it makes progress; a call given up this way keeps its
// thread, and everything that thread may still touch (the inner transport,
// the call's result, a read's buffer) is shared, so its late return harms
// nothing. The caller's own memory is never handed to it.
// That hand-off costs two context switches a call (a sync of 20k small
// files took twice as long). Where the caller is a helper thread that its
// own waiter can leave behind (HelperThreads), the call runs inline instead:
// the waiter looks for stalled calls, and a helper whose call was given up
// parks for good when the call returns, so it never runs on into code its
// waiter has left.
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/text.hpp"
#include "engine/dest/transport.hpp"

namespace sq::dest {

namespace {

using Clock = std::function<std::int64_t()>;

// One more second per MiB: the allowance of a flush or of a put's end.
std::int64_t allowance_for(std::int64_t bytes) { return bytes / (1 << 20) * 1000000000LL; }

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- given-up calls per destination ------------------------------------------

struct GivenUp {
  std::mutex mu;
  std::map<std::string, std::int64_t> calls;
};

// Never destroyed: a given-up call may return while the process exits.
GivenUp& given_up_registry() {
  static auto* registry = new GivenUp;
  return *registry;
}

void count_given_up(const std::string& destination, std::int64_t delta) {
  auto& r = given_up_registry();
  std::lock_guard lock(r.mu);
  if ((r.calls[destination] += delta) == 0) r.calls.erase(destination);
}

// ---- one call ---------------------------------------------------------------

// Shared by the caller and the worker running the call, so a given-up call
// can finish after its caller left.
struct Call {
  Call(std::shared_ptr<const Clock> c, std::string dest, const char* w, std::string n)
      : clock(std::move(c)), destination(std::move(dest)), what(w), name(std::move(n)) {
    progress();
  }
  std::shared_ptr<const Clock> clock;
  std::string destination;
  const char* what;  // for the message: "cannot put", …
  std::string name;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, given_up = false;
  std::exception_ptr error;
  std::atomic<std::int64_t> last_progress{0};
  std::atomic<std::int64_t> allowance{0};  // on top of the timeout

  std::int64_t now() const { return *clock ? (*clock)() : steady_ns(); }
  void progress() { last_progress.store(now(), std::memory_order_relaxed); }
  // The worker's end of the call; true when the caller had given it up.
  bool finish(std::exception_ptr e) {
    std::lock_guard lock(mu);
    error = std::move(e);
    done = true;
    cv.notify_all();
    return given_up;
  }
};

thread_local Call* t_running = nullptr;  // the call this worker thread runs

class Core;
// Set on a helper thread (HelperThreads): its calls to this guard run inline.
thread_local const Core* t_expendable = nullptr;

// A helper thread whose call was given up never returns to its caller's
// code, which its waiter has left behind: it waits here for good.
[[noreturn]] void park_for_good() {
  for (;;) ::pause();
}

// ---- the workers --------------------------------------------------------------

// Threads that run calls. A worker whose call was given up leaves the pool
// and ends when that call returns; the others wait for the next call.
class Pool {
 public:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::function<bool()> job;  // returns false when its call was given up
    bool stop = false;
    std::thread thread;
  };

  Pool() = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return busy_ == 0; });
    for (auto& w : idle_) {
      {
        std::lock_guard wl(w->mu);
        w->stop = true;
      }
      w->cv.notify_one();
    }
    auto idle = std::move(idle_);
    lock.unlock();
    for (auto& w : idle) w->thread.join();
  }

  std::shared_ptr<Worker> start(std::function<bool()> job) {
    std::shared_ptr<Worker> w;
    {
      std::lock_guard lock(mu_);
      ++busy_;
      if (!idle_.empty()) {
        w = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!w) {
      w = std::make_shared<Worker>();
      w->thread = std::thread([this, w] { loop(w); });
    }
    {
      std::lock_guard wl(w->mu);
      w->job = std::move(job);
    }
    w->cv.notify_one();
    return w;
  }

  // The worker's call was given up: the pool forgets it.
  void abandon(const std::shared_ptr<Worker>& w) {
    std::lock_guard lock(mu_);
    w->thread.detach();
    if (--busy_ == 0) idle_cv_.notify_all();
  }

 private:
  // `w` is shared with the thread, so an abandoned worker outlives the pool.
  void loop(std::shared_ptr<Worker> w) {
    for (;;) {
      std::function<bool()> job;
      {
        std::unique_lock wl(w->mu);
        w->cv.wait(wl, [&] { return w->job || w->stop; });
        if (!w->job) return;
        job = std::move(w->job);
        w->job = nullptr;
      }
      if (!job()) return;  // given up: the pool, maybe gone by now, is not touched again
      std::lock_guard lock(mu_);
      idle_.push_back(w);
      if (--busy_ == 0) idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::shared_ptr<Worker>> idle_;
  std::int64_t busy_ = 0;  // workers running a call the pool still waits for
};

// ---- the guard's state, shared with the readers it hands out --------------------

class Core {
 public:
  Core(std::unique_ptr<Transport> inner, StallOptions o)
      : inner_(std::move(inner)),
        clock_(std::make_shared<const Clock>(std::move(o.clock))),
        timeout_(o.timeout_ns),
        destination_(std::move(o.destination)) {}

  std::shared_ptr<Transport> inner() const { return inner_; }

  // Runs `op` on a worker (inline on a helper thread) and waits while it
  // makes progress; `allowance` is added to the timeout. Returns what `op`
  // returned or throws what it threw.
  template <class Op>
  auto run(const char* what, const std::string& name, Op op, std::int64_t allowance = 0) {
    using R = std::invoke_result_t<Op&>;
    refuse_if_wedged(what, name);
    auto call = std::make_shared<Call>(clock_, destination_, what, name);
    call->allowance = allowance;
    if (t_expendable == this) return run_inline(std::move(call), op);
    auto result = std::make_shared<std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>>();
    auto worker = pool_.start([call, result, op = std::move(op)]() mutable {
      t_running = call.get();
      std::exception_ptr e;
      try {
        if constexpr (std::is_void_v<R>) op();
        else result->emplace(op());
      } catch (...) {
        e = std::current_exception();
      }
      t_running = nullptr;
      if (!call->finish(std::move(e))) return true;
      count_given_up(call->destination, -1);
      return false;
    });
    wait(*call, worker, what, name);
    if constexpr (!std::is_void_v<R>) return std::move(**result);
  }

  // On a helper thread its waiter may leave behind: no hand-off (it costs
  // two context switches a call). The call is listed, so the waiter can
  // give it up (give_up_stalled); given up, the thread parks when it returns.
  template <class Op>
  auto run_inline(std::shared_ptr<Call> call, Op& op) {
    {
      std::lock_guard lock(inline_mu_);
      inline_.emplace_back(call, std::this_thread::get_id());
    }
    t_running = call.get();
    std::exception_ptr e;
    std::optional<std::conditional_t<std::is_void_v<decltype(op())>, bool, decltype(op())>> result;
    try {
      if constexpr (std::is_void_v<decltype(op())>) op();
      else result.emplace(op());
    } catch (...) {
      e = std::current_exception();
    }
    t_running = nullptr;
    bool given_up = call->finish(e);
    {
      std::lock_guard lock(inline_mu_);
      std::erase_if(inline_, [&](const auto& c) { return c.first == call; });
    }
    if (given_up) {
      count_given_up(destination_, -1);
      park_for_good();
    }
    if (e) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<decltype(op())>) return std::move(*result);
  }

  // Gives up every inline call past its deadline; returns the threads of
  // all inline calls given up so far, and the message of the first.
  std::vector<std::thread::id> give_up_stalled(std::string& message) {
    std::vector<std::thread::id> out;
    std::lock_guard lock(inline_mu_);
    for (auto& [call, thread] : inline_) {
      std::lock_guard cl(call->mu);
      if (!call->given_up && !call->done) {
        std::int64_t deadline = call->last_progress.load(std::memory_order_relaxed) + timeout_ + call->allowance.load();
        if (call->now() < deadline) continue;
        call->given_up = true;
        count_given_up(destination_, 1);
        wedged_.store(true);
      }
      if (!call->given_up) continue;
      if (message.empty()) message = stall_message(call->what, call->name);
      out.push_back(thread);
    }
    return out;
  }

  // How often a waiter for helper threads looks for stalled calls.
  std::chrono::nanoseconds poll_interval() const {
    if (*clock_) return std::chrono::milliseconds(1);
    return std::chrono::nanoseconds(std::min<std::int64_t>(timeout_ / 8 + 1, 1000000000));
  }

  // Called by put with every chunk of its source, in the call's thread.
  static void progress_running_call() {
    if (t_running) t_running->progress();
  }
  static bool running_call_given_up() {
    if (!t_running) return false;
    std::lock_guard lock(t_running->mu);
    return t_running->given_up;
  }

  void refuse_if_wedged(const char* what, const std::string& name) const {
    if (wedged_.load())
      throw StallError(fmt::format("{} {}: an earlier call to destination \"{}\" made no progress and was given up — "
                                   "nothing more is sent to it; check the disk or mount, then run again",
                                   what, escape_for_display(name), destination_));
  }
  bool wedged() const { return wedged_.load(); }

  std::atomic<std::int64_t> put_since_flush{0};  // bytes, for the flush's allowance

 private:
  void wait(Call& c, const std::shared_ptr<Pool::Worker>& worker, const char* what, const std::string& name) {
    {
      std::unique_lock lock(c.mu);
      while (!c.done) {
        std::int64_t now = c.now();
        std::int64_t deadline = c.last_progress.load(std::memory_order_relaxed) + timeout_ + c.allowance.load();
        if (now >= deadline) break;
        // A clock of the test's own is looked at every millisecond.
        auto slice = *clock_ ? std::chrono::nanoseconds(std::chrono::milliseconds(1))
                             : std::chrono::nanoseconds(deadline - now);
        c.cv.wait_for(lock, slice);
      }
      if (!c.done) {
        c.given_up = true;
        count_given_up(destination_, 1);  // under c.mu: the worker's -1 cannot come first
      }
    }
    if (c.given_up) give_up(worker, what, name);
    if (c.error) std::rethrow_exception(c.error);
  }

  [[noreturn]] void give_up(const std::shared_ptr<Pool::Worker>& worker, const char* what, const std::string& name) {
    pool_.abandon(worker);
    wedged_.store(true);
    throw StallError(stall_message(what, name));
  }

  std::string stall_message(const char* what, const std::string& name) const {
    return fmt::format("{} {}: the call made no progress for {} and was given up — destination \"{}\" may hang (a "
                       "failing disk, a dead mount); check it, then run again",
                       what, escape_for_display(name), format_duration_ns(timeout_), destination_);
  }

  std::shared_ptr<Transport> inner_;
  std::shared_ptr<const Clock> clock_;
  std::int64_t timeout_;
  std::string destination_;
  std::atomic<bool> wedged_{false};
  std::mutex inline_mu_;
  std::vector<std::pair<std::shared_ptr<Call>, std::thread::id>> inline_;  // inline calls in progress
  Pool pool_;  // last: its destructor waits for the workers still using the rest
};

// ---- a got file -----------------------------------------------------------------

// Every read goes through a buffer of the reader's own, so a read given up
// and completing later writes only there; after a stall it reads no more.
class StallReader final : public Reader {
 public:
  StallReader(std::shared_ptr<Core> core, std::shared_ptr<Reader> inner, std::string name)
      : core_(std::move(core)), inner_(std::move(inner)), name_(std::move(name)) {}
  ~StallReader() override;
  StallReader(const StallReader&) = delete;
  StallReader& operator=(const StallReader&) = delete;

  std::size_t read(char* buf, std::size_t len) override {
    if (!buf_ || buf_->size() < len) buf_ = std::make_shared<std::vector<char>>(len);
    std::size_t n = core_->run("cannot read", name_, [r = inner_, b = buf_, len] { return r->read(b->data(), len); });
    if (n > len) throw TransportError(EINVAL, "a read of " + escape_for_display(name_) + " overran its buffer");
    std::memcpy(buf, buf_->data(), n);
    return n;
  }
  Stat stat() override {
    return core_->run("cannot stat", name_, [r = inner_] { return r->stat(); });
  }

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<Reader> inner_;
  std::string name_;
  std::shared_ptr<std::vector<char>> buf_;
};

// Closing may hang like any call, so it runs on a worker too; a wedged
// destination gets a thread of its own to close on.
StallReader::~StallReader() {
  if (core_->wedged()) {
    std::thread([r = std::move(inner_)] {}).detach();
    return;
  }
  try {
    core_->run("cannot close", name_, [r = std::move(inner_)]() mutable { r.reset(); });
  } catch (const std::exception&) {
    // nothing to report from a destructor; a given-up close is counted
  }
}

// ---- the guard ----------------------------------------------------------------------

// What a put reads from: the caller's source, read on the worker's thread
// only while the caller still waits. A caller that gave up takes the mutex
// (waiting out a source read in progress) and revokes it, so a late read
// never touches the caller's source or memory.
struct Feed {
  std::mutex mu;
  const ReadFn* read = nullptr;  // null once revoked
  std::int64_t bytes = 0;

  std::size_t pull(char* buf, std::size_t len) {
    std::lock_guard lock(mu);
    if (!read) throw StallError("the put was given up");
    std::size_t n = (*read)(buf, len);
    bytes += static_cast<std::int64_t>(n);
    if (n == 0 && t_running) t_running->allowance = allowance_for(bytes);  // the end: time to sync
    Core::progress_running_call();
    return n;
  }
  void revoke() {
    std::lock_guard lock(mu);
    read = nullptr;
  }
};

class StallTransport final : public Transport {
 public:
  StallTransport(std::unique_ptr<Transport> inner, StallOptions o)
      : core_(std::make_shared<Core>(std::move(inner), std::move(o))), inner_(core_->inner()) {}
  const std::shared_ptr<Core>& core() const { return core_; }

  Stat stat(const std::string& name) override {
    return core_->run("cannot stat", name, [t = inner_, name] { return t->stat(name); });
  }
  std::vector<Entry> list(const std::string& dir) override {
    return core_->run("cannot list", dir, [t = inner_, dir] { return t->list(dir); });
  }
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override {
    auto feed = std::make_shared<Feed>();
    feed->read = &read;
    struct Revoke {
      Feed& f;
      ~Revoke() { f.revoke(); }
    } revoke_on_exit{*feed};
    auto result = core_->run("cannot put", name, [t = inner_, feed, name, mtime_ns] {
      return t->put(name, [feed](char* buf, std::size_t len) { return feed->pull(buf, len); }, mtime_ns);
    });
    core_->put_since_flush += result.bytes;
    return result;
  }
  std::unique_ptr<Reader> get(const std::string& name) override {
    std::shared_ptr<Reader> r = core_->run("cannot get", name, [t = inner_, name] { return t->get(name); });
    return std::make_unique<StallReader>(core_, std::move(r), name);
  }
  ReadBack read_back(const std::string& name) override {
    return core_->run("cannot read back", name, [t = inner_, name] { return t->read_back(name); });
  }
  std::vector<Stat> stat_many(const std::vector<std::string>& names) override {
    if (names.empty()) return {};
    return core_->run("cannot stat", names.front(), [t = inner_, names] { return t->stat_many(names); });
  }
  std::vector<ReadBack> read_back_many(const std::vector<std::string>& names) override {
    if (names.empty()) return {};
    return core_->run("cannot read back", names.front(), [t = inner_, names] { return t->read_back_many(names); });
  }
  void rename(const std::string& from, const std::string& to) override {
    core_->run("cannot rename", from, [t = inner_, from, to] { t->rename(from, to); });
  }
  void remove(const std::string& name) override {
    core_->run("cannot remove", name, [t = inner_, name] { t->remove(name); });
  }
  void mkdirs(const std::string& dir) override {
    core_->run("cannot create directory", dir, [t = inner_, dir] { t->mkdirs(dir); });
  }
  std::string durability_gap() override { return inner_->durability_gap(); }
  bool hashes_on_server() override { return inner_->hashes_on_server(); }
  void flush() override {
    auto allowance = allowance_for(core_->put_since_flush.exchange(0));
    core_->run("cannot flush", "", [t = inner_] { t->flush(); }, allowance);
  }

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<Transport> inner_;
};

}  // namespace

std::unique_ptr<Transport> stall_guarded(std::unique_ptr<Transport> inner, StallOptions opts) {
  if (opts.timeout_ns <= 0) return inner;
  return std::make_unique<StallTransport>(std::move(inner), std::move(opts));
}

std::int64_t given_up_calls(const std::string& destination) {
  auto& r = given_up_registry();
  std::lock_guard lock(r.mu);
  auto it = r.calls.find(destination);
  return it == r.calls.end() ? 0 : it->second;
}

void note_progress() { Core::progress_running_call(); }

bool call_given_up() { return Core::running_call_given_up(); }

// ---- helper threads -----------------------------------------------------------------

struct HelperThreads::State {
  struct Helper {
    std::thread::id id;
    bool finished = false, abandoned = false;
  };
  std::shared_ptr<Core> core;  // null: the transport has no stall guard
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Helper> helpers;
  std::exception_ptr error;  // the first a body let escape
};

HelperThreads::HelperThreads(Transport& t) : s_(std::make_shared<State>()) {
  if (auto* g = dynamic_cast<StallTransport*>(&t)) s_->core = g->core();
}

HelperThreads::~HelperThreads() {
  try {
    wait();
  } catch (...) {
    // wait() already left the stalled helpers behind; the caller is unwinding
  }
}

void HelperThreads::spawn(std::function<void()> body) {
  std::size_t i = 0;
  {
    std::lock_guard lock(s_->mu);
    i = s_->helpers.size();
    s_->helpers.emplace_back();
  }
  threads_.emplace_back([s = s_, i, body = std::move(body)] {
    t_expendable = s->core.get();
    std::exception_ptr e;
    try {
      body();
    } catch (...) {
      e = std::current_exception();
    }
    t_expendable = nullptr;
    std::lock_guard lock(s->mu);
    if (e && !s->error) s->error = e;
    s->helpers[i].finished = true;
    s->cv.notify_all();
  });
  std::lock_guard lock(s_->mu);
  s_->helpers[i].id = threads_.back().get_id();
}

void HelperThreads::wait() {
  std::string message;
  std::unique_lock lock(s_->mu);
  auto waiting = [&] {
    return std::any_of(s_->helpers.begin(), s_->helpers.end(), [](const auto& h) { return !h.finished && !h.abandoned; });
  };
  while (waiting()) {
    if (!s_->core) {
      s_->cv.wait(lock);
      continue;
    }
    s_->cv.wait_for(lock, s_->core->poll_interval());
    lock.unlock();
    auto stalled = s_->core->give_up_stalled(message);
    lock.lock();
    for (auto& h : s_->helpers)
      if (!h.finished && std::find(stalled.begin(), stalled.end(), h.id) != stalled.end()) h.abandoned = true;
  }
  bool left_behind = false;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    if (!threads_[i].joinable()) continue;
    left_behind |= s_->helpers[i].abandoned;
    if (s_->helpers[i].abandoned) threads_[i].detach();
  }
  auto error = std::exchange(s_->error, nullptr);
  lock.unlock();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  if (left_behind) throw StallError(message);
  if (error) std::rethrow_exception(error);
}

}  // namespace sq::dest
