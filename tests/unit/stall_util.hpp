#pragma once
// Helpers for tests of stalled transport calls: a clock that moves only
// when a test moves it (so no test measures real time), a gate a hung call
// waits at until the test opens it, and stall guard options on that clock.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/dest/transport.hpp"

namespace sq::test {

// Nanoseconds that pass only by advance(). Counts how often it was read, so
// a test can wait until a stall guard has looked at the time since.
class ManualClock {
 public:
  std::int64_t now() {
    reads_.fetch_add(1);
    return now_.load();
  }
  void advance(std::int64_t ns) { now_.fetch_add(ns); }
  std::int64_t reads() const { return reads_.load(); }
  // Returns once the clock has been read `n` more times (a guard waiting
  // for a call reads it about every millisecond).
  void await_reads(std::int64_t n) {
    auto until = reads() + n;
    while (reads() < until) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }

 private:
  std::atomic<std::int64_t> now_{1'000'000'000'000};
  std::atomic<std::int64_t> reads_{0};
};

// A door a hung call waits at; the test opens it once it has seen what it
// wanted while the call hung.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  bool wait_while(const std::function<void()>& tick) {
    std::unique_lock lock(mu_);
    while (!open_) {
      lock.unlock();
      tick();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    return true;
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

constexpr std::int64_t kTestStallTimeout = 600LL * 1000000000;  // the product's ten minutes, on the manual clock

inline dest::StallOptions stall_options(const std::shared_ptr<ManualClock>& clock, const std::string& dest = "d") {
  dest::StallOptions o;
  o.timeout_ns = kTestStallTimeout;
  o.destination = dest;
  o.clock = [clock] { return clock->now(); };  // shared: a late call may read it after the test moved on
  return o;
}

// Returns once every given-up call to `dest` has returned. A hung call
// returns once its test opened the gate; the wait is for that, not a timer.
inline void await_given_up_calls_returned(const std::string& dest = "d") {
  while (dest::given_up_calls(dest) > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace sq::test
