#pragma once
// Who owns a running record. A pid alone is not enough (pids are reused,
// and a reboot resets them), so ownership is pid + boot id + the process's
// start time in clock ticks since boot. A record is reapable only when its
// owner is positively gone: another boot, no such pid, or a different
// process now wearing that pid.
#include <cstdint>
#include <optional>
#include <string>

namespace sq {

struct ProcessIdentity {
  std::int64_t pid = 0;
  std::string boot_id;
  std::int64_t start_ticks = 0;
};

ProcessIdentity self_identity();
std::optional<std::int64_t> process_start_ticks(std::int64_t pid);
std::string current_boot_id();
// True only when we are sure the owner no longer runs.
bool owner_is_gone(const ProcessIdentity& owner);

// The operator's user name for audit rows, empty when unknown.
std::string operator_name();
std::string host_name();

}  // namespace sq
