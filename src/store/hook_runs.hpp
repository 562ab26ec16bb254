#pragma once
// Hook invocations: begun running, finished once through the shared
// first-write-wins finish.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/process.hpp"
#include "store/db.hpp"

namespace sq::store {

struct HookRunSpec {
  std::int64_t volume_id = 0;
  std::string trigger;                         // change | interval
  std::optional<std::int64_t> triggering_run;  // required for change, absent for interval
  bool changed = false;
  ProcessIdentity owner = self_identity();
};

struct HookRunRow {
  std::int64_t id = 0, volume_id = 0;
  std::string volume_name, trigger, status, error;
  std::optional<std::int64_t> triggering_run, ended_at_ns, exit_code;
  bool changed = false;
  std::int64_t started_at_ns = 0;
};

std::int64_t begin_hook_run(Db& db, const HookRunSpec& spec);
// status must be success or failed.
void finish_hook_run(Db& db, std::int64_t id, const std::string& status, std::optional<std::int64_t> exit_code,
                     const std::string& error);
// Newest first; limit 0 lists every hook run.
std::vector<HookRunRow> list_hook_runs(Db& db, std::optional<std::int64_t> volume_id, int limit);

}  // namespace sq::store
