#pragma once
// A live one-line progress display on stderr, redrawn in place; silent
// unless enabled (a TTY or -P).
#include <chrono>
#include <cstdint>
#include <string>

namespace sq::cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  ~ProgressLine() { clear(); }
  // With bytes_total known (> 0), the line ends with an estimate of the time left.
  void update(const std::string& verb, std::int64_t files, std::int64_t bytes, const std::string& path,
              std::int64_t bytes_total = 0);
  void clear();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Keeps the tail of a path, at most `max` code points.
std::string tail_runes(const std::string& s, std::size_t max);
std::string format_rate(double bytes_per_second);
// "ETA 2m5s" from what is left and the rate so far; "ETA —" while unknown.
std::string format_eta(std::int64_t bytes_left, double bytes_per_second);
bool stderr_is_tty();

}  // namespace sq::cli
