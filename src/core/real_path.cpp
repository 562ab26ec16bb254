#include "core/real_path.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sq {

namespace fs = std::filesystem;

namespace {

// proc(5) escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool octal = text[i] == '\\' && i + 3 < text.size() &&
                 std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                             text.begin() + static_cast<std::ptrdiff_t>(i) + 4,
                             [](char c) { return c >= '0' && c <= '7'; });
    if (!octal) {
      out += text[i];
      continue;
    }
    out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
    i += 3;
  }
  return out;
}

// Lexically normal, without the trailing separator lexically_normal keeps.
fs::path normal(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (!n.has_filename() && n.has_relative_path()) n = n.parent_path();
  return n;
}

fs::path joined(const fs::path& base, const fs::path& rel) {
  if (rel.empty() || rel == ".") return normal(base);
  return normal(base / rel);
}

bool same_inode(const fs::path& a, const struct stat& b) {
  struct stat st {};
  return ::stat(a.c_str(), &st) == 0 && st.st_dev == b.st_dev && st.st_ino == b.st_ino;
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 3) continue;
    out.push_back({f[2], unescape_octal(f[3]), unescape_octal(f[4]), unescape_octal(*(dash + 1)),
                   unescape_octal(*(dash + 2))});
  }
  return out;
}

std::vector<MountEntry> read_mounts() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_mountinfo(text.str());
}

const MountEntry* mount_of(const std::vector<MountEntry>& mounts, const fs::path& real) {
  const MountEntry* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& m : mounts) {
    auto point = normal(m.mount_point);
    if (!point.is_absolute() || !path_within(real, point)) continue;
    std::size_t len = point.native().size();
    if (!best || len >= best_len) {
      best = &m;
      best_len = len;
    }
  }
  return best;
}

fs::path nearest_existing(const fs::path& path) {
  fs::path p = normal(path);
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 || !p.has_relative_path()) return p;
    p = p.parent_path();
  }
}

RealLocation locate(const fs::path& path, const std::vector<MountEntry>& mounts) {
  std::error_code ec;
  fs::path absolute = normal(path.is_absolute() ? path : fs::absolute(path, ec));
  fs::path existing = nearest_existing(absolute);
  RealLocation loc;
  char buf[PATH_MAX];
  fs::path resolved = ::realpath(existing.c_str(), buf) ? fs::path(buf) : existing;
  loc.real = joined(resolved, absolute.lexically_relative(existing));
  if (const MountEntry* m = mount_of(mounts, loc.real)) {
    loc.device = m->device;
    loc.in_fs = joined(m->root, loc.real.lexically_relative(normal(m->mount_point)));
  }
  return loc;
}

bool path_within(const fs::path& inner, const fs::path& outer) {
  fs::path i = normal(inner), o = normal(outer);
  return std::mismatch(o.begin(), o.end(), i.begin(), i.end()).first == o.end();
}

bool contains_real(const RealLocation& outer, const RealLocation& inner) {
  if (path_within(inner.real, outer.real)) return true;
  if (!outer.device.empty() && outer.device == inner.device && path_within(inner.in_fs, outer.in_fs)) return true;
  struct stat target {};
  if (::stat(outer.real.c_str(), &target) != 0) return false;
  for (fs::path p = nearest_existing(inner.real);; p = p.parent_path()) {
    if (same_inode(p, target)) return true;
    if (!p.has_relative_path()) return false;
  }
}

}  // namespace sq
