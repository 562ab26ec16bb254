#include "core/process.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sq {

std::string current_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::optional<std::int64_t> process_start_ticks(std::int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may contain spaces and parentheses; fields resume
  // after the last ')'. starttime is field 22, the 20th after it.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 0; i < 20 && rest >> field; ++i) {
  }
  try {
    return std::stoll(field);
  } catch (...) {
    return std::nullopt;
  }
}

ProcessIdentity self_identity() {
  ProcessIdentity id;
  id.pid = getpid();
  id.boot_id = current_boot_id();
  id.start_ticks = process_start_ticks(id.pid).value_or(0);
  return id;
}

bool owner_is_gone(const ProcessIdentity& owner) {
  if (owner.pid <= 0) return false;  // unknown owner: never reap automatically
  if (!owner.boot_id.empty() && owner.boot_id != current_boot_id()) return true;
  auto ticks = process_start_ticks(owner.pid);
  if (!ticks) return true;
  return owner.start_ticks != 0 && *ticks != owner.start_ticks;
}

std::string operator_name() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (auto* pw = getpwuid(geteuid())) return pw->pw_name;
  return "";
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace sq
