#pragma once
// The phases every layout's push shares: stream a batch of contents into
// this run's staging (hashed on the way; a source that changed since it
// was indexed is drift), flush, and read the staged copies back. A path
// whose step fails drops out of the batch; nothing unverified moves on.
#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "engine/sync/push.hpp"

namespace sq::engine::sync {

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
  std::string staged;           // where the bytes are staged at the destination
  std::exception_ptr fatal;     // a stall or anything but an Error (a simulated crash) must reach the driver
};

void drop(Push& p, Item& it, const std::string& msg);
void report_all(Push& p, std::vector<Item>& items);

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

template <class Step>
void in_flight(Push& p, std::vector<Item>& items, std::size_t width, Step step) {
  run_in_flight(p, items, width, step);
  report_all(p, items);
}

// Streams the batch into staging (each item's `staged` name); finish_stage()
// reports and flushes.
void stage(Push& p, std::vector<Item>& items);
void finish_stage(Push& p, std::vector<Item>& items);
// Reads the staged copies back (past the cache, or by the server's hash
// command); a copy that does not match drops out.
void read_back(Push& p, std::vector<Item>& items);

// The next batch of `plan` from position i: up to `max_files` items (and
// the push's batch bytes), each staged under `staged_name(write)`.
using StagedName = std::function<std::string(const PlannedWrite&)>;
std::vector<Item> next_batch(const Push& p, const Plan& plan, std::size_t& i, std::size_t max_files,
                             const StagedName& staged_name);

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

}  // namespace sq::engine::sync
