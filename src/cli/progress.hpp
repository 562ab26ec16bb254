#pragma once
// A live one-line progress display on stderr, redrawn in place; silent
// unless enabled (a TTY or -P). Every command that makes people wait
// (index, audit, sync, restore, verify, offload) draws through this one
// renderer, so the lines read alike.
#include <chrono>
#include <cstdint>
#include <string>

namespace sq::cli {

// What a phase has done of what it planned. A files_total of 0 means the
// plan is not known (a walk that discovers as it goes): only what was done
// is shown, with no estimate.
struct ProgressCounts {
  std::int64_t files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;
};

// The text of one progress line, `secs` into its phase. Pure, so the
// format is pinned by tests without a clock.
//   planned:   "<verb> 3/10 files · 1.0 MiB of 4.0 MiB · 2.0 MiB/s · ETA 1s · <path>"
//   unplanned: "<verb>: 3 files · 1.0 MiB · 2.0 MiB/s · <path>"
// A plan without bytes (stat calls only) shows files per second and an
// estimate from the file count.
std::string progress_text(const std::string& verb, const ProgressCounts& c, const std::string& path, double secs);

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  ~ProgressLine() { clear(); }
  // Without a plan (index, audit).
  void update(const std::string& verb, std::int64_t files, std::int64_t bytes, const std::string& path) {
    update(verb, ProgressCounts{files, 0, bytes, 0}, path);
  }
  // A new verb or plan, or counts that went back, start a new phase: its
  // rate and estimate owe nothing to the phase before (another destination,
  // or verify's stat pass before its re-hash pass).
  void update(const std::string& verb, const ProgressCounts& c, const std::string& path);
  void clear();
  bool enabled() const { return enabled_; }

 private:
  using Clock = std::chrono::steady_clock;
  bool due(const std::string& verb, const ProgressCounts& c, Clock::time_point now);

  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_, last_draw_{};
  std::string verb_;
  ProgressCounts last_;
};

// Keeps the tail of a path, at most `max` code points.
std::string tail_runes(const std::string& s, std::size_t max);
std::string format_rate(double bytes_per_second);
// "ETA 2m5s" from what is left and the rate so far; "ETA —" while unknown.
std::string format_eta(std::int64_t bytes_left, double bytes_per_second);
bool stderr_is_tty();

}  // namespace sq::cli
