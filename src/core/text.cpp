#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>

namespace sq {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name)
    if (!alnum(c) && c != '_' && c != '-') return false;
  return true;
}

namespace {

std::optional<std::uint64_t> unit_ns(std::string_view unit) {
  if (unit == "ns") return 1;
  // "us", and "µs" spelled with the micro sign or the Greek mu.
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return 1000;
  if (unit == "ms") return 1000000;
  if (unit == "s") return 1000000000ULL;
  if (unit == "m") return 60ULL * 1000000000ULL;
  if (unit == "h") return 3600ULL * 1000000000ULL;
  if (unit == "d") return 86400ULL * 1000000000ULL;
  return std::nullopt;
}

// Reads a decimal number (digits with an optional fraction) at the front of s.
std::optional<double> take_number(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string num(s.substr(0, i));
  if (num == "." || std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
  s.remove_prefix(i);
  if (i > 30) return std::nullopt;  // no real duration or size needs more digits
  return std::strtod(num.c_str(), nullptr);
}

constexpr std::uint64_t kMaxDuration = 9223372036854775807ULL;  // Go's time.Duration range

// One "<number><unit>" of a duration, added to `total`. Whole digits are
// exact; a fraction keeps as many digits as fit, then the rest are read
// and ignored, so any length of input is accepted as Go accepts it.
bool take_component(std::string_view& s, std::uint64_t& total) {
  std::uint64_t whole = 0, fraction = 0;
  double scale = 1;
  std::size_t i = 0, digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
    if (whole > (kMaxDuration - static_cast<std::uint64_t>(s[i] - '0')) / 10) return false;
    whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  if (i < s.size() && s[i] == '.') {
    // Past 18 digits no unit up to a day adds a nanosecond.
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      if (scale >= 1e18) continue;
      fraction = fraction * 10 + static_cast<std::uint64_t>(s[i] - '0');
      scale *= 10;
    }
  }
  if (digits == 0) return false;
  std::size_t j = i;
  while (j < s.size() && s[j] != '.' && !(s[j] >= '0' && s[j] <= '9')) ++j;
  auto unit = unit_ns(s.substr(i, j - i));
  if (!unit || whole > kMaxDuration / *unit) return false;
  std::uint64_t value = whole * *unit;
  value += static_cast<std::uint64_t>(static_cast<double>(fraction) * (static_cast<double>(*unit) / scale));
  if (value > kMaxDuration || total > kMaxDuration - value) return false;
  total += value;
  s.remove_prefix(j);
  return true;
}

}  // namespace

// Every form Go's time.ParseDuration accepts ("1h30m", ".5h", "1.h",
// "+90m", "300ms", "2562047h"), plus "d" for days. A negative duration has
// no use here, so only a negative zero survives.
std::optional<std::int64_t> parse_duration_ns(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  std::uint64_t total = 0;
  while (!s.empty())
    if (!take_component(s, total)) return std::nullopt;
  if (negative && total != 0) return std::nullopt;
  return static_cast<std::int64_t>(total);
}

std::string format_duration_ns(std::int64_t ns) {
  if (ns < 0) return "-" + format_duration_ns(-ns);
  std::int64_t s = ns / 1000000000LL;
  if (s < 1) return fmt::format("{}ms", ns / 1000000);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{}h", s / 86400, (s % 86400) / 3600);
}

std::optional<std::int64_t> parse_size_bytes(std::string_view s) {
  auto n = take_number(s);
  if (!n) return std::nullopt;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  std::string u;
  for (char c : s) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mult = 0;
  if (u.empty() || u == "b") mult = 1;
  else if (u == "k" || u == "kb") mult = 1e3;
  else if (u == "ki" || u == "kib") mult = 1024.0;
  else if (u == "m" || u == "mb") mult = 1e6;
  else if (u == "mi" || u == "mib") mult = 1048576.0;
  else if (u == "g" || u == "gb") mult = 1e9;
  else if (u == "gi" || u == "gib") mult = 1073741824.0;
  else if (u == "t" || u == "tb") mult = 1e12;
  else if (u == "ti" || u == "tib") mult = 1099511627776.0;
  else return std::nullopt;
  double v = *n * mult;
  if (v > 9.2e18) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(v));
}

std::string format_bytes(std::int64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) { v /= 1024.0; ++u; }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.1f} {}", v, units[u]);
}

namespace {
// Length of a valid UTF-8 sequence starting at p, or 0 when invalid.
std::size_t utf8_len(std::string_view s, std::size_t p) {
  auto b = static_cast<unsigned char>(s[p]);
  std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || p + n > s.size()) return 0;
  for (std::size_t i = 1; i < n; ++i)
    if ((static_cast<unsigned char>(s[p + i]) & 0xC0) != 0x80) return 0;
  if (n == 2 && b < 0xC2) return 0;
  return n;
}
}  // namespace

std::string escape_for_display(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') { out += "\\\\"; ++i; continue; }
    if (c == '\n') { out += "\\n"; ++i; continue; }
    if (c == '\t') { out += "\\t"; ++i; continue; }
    std::size_t n = utf8_len(s, i);
    if (n == 0 || c < 0x20 || c == 0x7f) { out += fmt::format("\\x{:02x}", c); ++i; continue; }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

namespace {

bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

// Length of the strictly valid sequence at p, or 0. The second byte's range
// depends on the first (Go's acceptRanges); later bytes are 80..BF.
std::size_t strict_utf8_len(std::string_view s, std::size_t p) {
  auto b = static_cast<unsigned char>(s[p]);
  if (b < 0x80) return 1;
  std::size_t n = in(b, 0xC2, 0xDF) ? 2 : in(b, 0xE0, 0xEF) ? 3 : in(b, 0xF0, 0xF4) ? 4 : 0;
  if (n == 0 || p + n > s.size()) return 0;
  auto second = static_cast<unsigned char>(s[p + 1]);
  unsigned char lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
  unsigned char hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
  if (!in(second, lo, hi)) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (!in(static_cast<unsigned char>(s[p + i]), 0x80, 0xBF)) return 0;
  return n;
}

constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  auto at = kBase64.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = strict_utf8_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_replacing_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = strict_utf8_len(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kBase64[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kBase64[v & 63] : '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    std::size_t pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4 - pad; ++k) {
      int d = base64_value(text[i + k]);
      if (d < 0) return std::nullopt;
      v |= static_cast<std::uint32_t>(d) << (18 - 6 * k);
    }
    if ((pad == 1 && (v & 0xFF) != 0) || (pad == 2 && (v & 0xFFFF) != 0)) return std::nullopt;  // spare bits set
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(v & 0xFF);
  }
  return out;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {
std::tm utc_tm(std::int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000LL);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}
}  // namespace

std::string rfc3339_utc(std::int64_t ns) {
  std::tm tm = utc_tm(ns);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::string rfc3339_nano_utc(std::int64_t ns) {
  std::tm tm = utc_tm(ns);
  std::int64_t nanos = ((ns % 1000000000LL) + 1000000000LL) % 1000000000LL;
  std::string fraction;
  if (nanos != 0) {
    fraction = fmt::format(".{:09}", nanos);
    while (fraction.back() == '0') fraction.pop_back();
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, fraction);
}

namespace {

// Exactly `n` digits at `at`, or nullopt.
std::optional<int> fixed_digits(std::string_view text, std::size_t at, std::size_t n) {
  if (at + n > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// The "Z" or "±hh:mm" that ends an RFC 3339 time, as seconds east of UTC.
std::optional<int> zone_offset(std::string_view zone) {
  if (zone == "Z" || zone == "z") return 0;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return std::nullopt;
  auto h = fixed_digits(zone, 1, 2), m = fixed_digits(zone, 4, 2);
  if (!h || !m || *h > 23 || *m > 59) return std::nullopt;
  int seconds = *h * 3600 + *m * 60;
  return zone[0] == '-' ? -seconds : seconds;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_ns(std::string_view text) {
  auto year = fixed_digits(text, 0, 4), month = fixed_digits(text, 5, 2), day = fixed_digits(text, 8, 2);
  auto hour = fixed_digits(text, 11, 2), minute = fixed_digits(text, 14, 2), second = fixed_digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 59)
    return std::nullopt;
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (at < text.size() && text[at] == '.') {
    std::size_t digits = 0;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++digits)
      if (digits < 9) nanos = nanos * 10 + (text[at] - '0');
    if (digits == 0) return std::nullopt;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  auto offset = zone_offset(text.substr(at));
  if (!offset) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  std::int64_t seconds = static_cast<std::int64_t>(::timegm(&tm)) - *offset;
  return seconds * 1000000000LL + nanos;
}

std::string go_json(std::string_view dumped) {
  std::string out;
  out.reserve(dumped.size());
  for (std::size_t i = 0; i < dumped.size(); ++i) {
    char c = dumped[i];
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xE2' && i + 2 < dumped.size() && dumped[i + 1] == '\x80' &&
             (dumped[i + 2] == '\xA8' || dumped[i + 2] == '\xA9')) {
      out += dumped[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// One character of a JSON string as nlohmann's dump writes it (the
// receipts squirrel has always written), then Go's HTML-safe escapes.
void append_json_char(std::string& out, char c) {
  switch (c) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '<': out += "\\u003c"; return;
    case '>': out += "\\u003e"; return;
    case '&': out += "\\u0026"; return;
    default: break;
  }
  if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
  else out += c;
}

}  // namespace

std::string go_json_string(std::string_view bytes) {
  std::string out = "\"";
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t n = strict_utf8_len(bytes, i);
    auto seq = bytes.substr(i, std::max<std::size_t>(n, 1));
    if (n == 0) out += "\\ufffd";
    else if (seq == "\xE2\x80\xA8") out += "\\u2028";
    else if (seq == "\xE2\x80\xA9") out += "\\u2029";
    else if (n == 1) append_json_char(out, seq[0]);
    else out.append(seq);
    i += seq.size();
  }
  return out + "\"";
}

std::string compact_utc(std::int64_t ns) {
  std::tm tm = utc_tm(ns);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (ns / 1000000) % 1000);
}

}  // namespace sq
