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

void ProgressLine::update(const std::string& verb, std::int64_t files, std::int64_t bytes, const std::string& path,
                          std::int64_t bytes_total) {
  if (!enabled_) return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(bytes) / secs : 0;
  auto eta = bytes_total > 0 ? " · " + format_eta(bytes_total - bytes, rate) : std::string();
  auto line = fmt::format("{}: {} files · {} · {}{} · {}", verb, files, format_bytes(bytes), format_rate(rate), eta,
                          tail_runes(escape_for_display(path), 48));
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
