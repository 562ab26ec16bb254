#include "cli/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "core/text.hpp"

namespace sq::cli {

bool stderr_is_tty() { return ::isatty(2) == 1; }

std::string tail_runes(const std::string& s, std::size_t max) {
  std::size_t count = 0, i = s.size();
  while (i > 0) {
    --i;
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++count == max) return "…" + s.substr(i);
  }
  return s;
}

std::string format_rate(double bps) {
  if (!(bps > 0)) return "— /s";
  return format_bytes(static_cast<std::int64_t>(bps)) + "/s";
}

std::string format_eta(std::int64_t bytes_left, double bps) {
  if (bytes_left <= 0) return "ETA 0s";
  if (!(bps > 0)) return "ETA —";
  return "ETA " + format_duration_ns(static_cast<std::int64_t>(static_cast<double>(bytes_left) / bps * 1e9));
}

namespace {

double per_second(std::int64_t n, double secs) { return secs > 0 ? static_cast<double>(n) / secs : 0; }

// Rate and estimate of a planned phase: by bytes when it moves bytes, by
// files when it only looks at them.
std::string planned_tail(const ProgressCounts& c, double secs) {
  if (c.bytes_total > 0) {
    double rate = per_second(c.bytes_done, secs);
    return fmt::format("{} of {} · {} · {}", format_bytes(c.bytes_done), format_bytes(c.bytes_total),
                       format_rate(rate), format_eta(c.bytes_total - c.bytes_done, rate));
  }
  double rate = per_second(c.files_done, secs);
  auto shown = rate > 0 ? fmt::format("{:.0f} files/s", rate) : std::string("— files/s");
  return shown + " · " + format_eta(c.files_total - c.files_done, rate);
}

}  // namespace

std::string progress_text(const std::string& verb, const ProgressCounts& c, const std::string& path, double secs) {
  // The announcement of a phase names no file yet.
  auto shown_path = path.empty() ? "" : " · " + tail_runes(escape_for_display(path), 48);
  if (c.files_total > 0)
    return fmt::format("{} {}/{} files · {}{}", verb, c.files_done, c.files_total, planned_tail(c, secs),
                       shown_path);
  return fmt::format("{}: {} files · {} · {}{}", verb, c.files_done, format_bytes(c.bytes_done),
                     format_rate(per_second(c.bytes_done, secs)), shown_path);
}

// Redraws at most every 100 ms: a million small files would otherwise
// spend more time writing the line than doing the work. The first line of
// a phase and its last (everything done) are always drawn.
bool ProgressLine::due(const std::string& verb, const ProgressCounts& c, Clock::time_point now) {
  bool new_phase = verb != verb_ || c.files_total != last_.files_total || c.bytes_total != last_.bytes_total ||
                   c.files_done < last_.files_done || c.bytes_done < last_.bytes_done;
  if (new_phase) {
    start_ = now;
    verb_ = verb;
  }
  last_ = c;
  bool finished = c.files_total > 0 && c.files_done == c.files_total;
  return new_phase || finished || !drawn_ || now - last_draw_ >= std::chrono::milliseconds(100);
}

void ProgressLine::update(const std::string& verb, const ProgressCounts& c, const std::string& path) {
  if (!enabled_) return;
  auto now = Clock::now();
  if (!due(verb, c, now)) return;
  last_draw_ = now;
  auto line = progress_text(verb, c, path, std::chrono::duration<double>(now - start_).count());
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace sq::cli
