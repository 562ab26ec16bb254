#pragma once
// Offload: the only operation that deletes user bytes. Each candidate must
// pass the durability gate for every required target; its bytes are then
// re-checked through the open handle (inode, size, mtime, BLAKE3) right
// before the unlink, and only after the unlink is the row flipped.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/offload_gate.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine {

struct OffloadOptions {
  std::vector<std::string> selectors;        // volume-relative; "." is the whole volume
  std::optional<std::int64_t> older_than_ns; // only files whose indexed mtime is older
  bool dry_run = false;
  bool per_file = false;                     // keep every refusal, not only aggregates
  std::optional<std::int64_t> now_ns;        // the clock evidence ages and --older-than use (tests); default now
};

struct RefusalGroup {
  std::string target;
  GateCause cause = GateCause::no_evidence;
  std::int64_t files = 0;
  std::string example_path, example_detail, next;
};

struct OffloadReport {
  std::string volume;
  std::int64_t run_id = 0;
  store::RunStatus status = store::RunStatus::success;
  bool dry_run = false;
  std::int64_t candidates = 0, offloaded = 0, bytes = 0, not_durable = 0, drift = 0, errors = 0;
  std::vector<RefusalGroup> refusals;                         // aggregated by (target, cause)
  std::map<std::string, std::int64_t> satisfied;              // target -> files it satisfied
  std::vector<std::pair<std::string, GateRefusal>> per_file;  // with --per-file
  std::vector<std::pair<std::string, std::string>> drifted;   // path, what differed
  std::vector<std::string> unmatched_selectors;
};

// Throws Error(refused/usage) for preconditions (no policy, no selector,
// bad selector, volume disagreement — a refused run row is recorded for
// the latter) and Error(conflict) when another run holds the volume.
OffloadReport run_offload(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const OffloadOptions& opts);

}  // namespace sq::engine
