#pragma once
// Offload: the only operation that deletes user bytes. Order of operations:
//  1. resolve the volume (config = DB = marker), begin the gated run, and
//     settle what an earlier killed offload left (settle.cpp);
//  2. judge every candidate offline against every required target (gate.hpp)
//     and against what each target looks like now (world.hpp);
//  3. per batch: confirm each file's copy at every target (re-hashed on a
//     local disk), record the intent to unlink in a commit of its own,
//     re-check the local bytes through the open handle (inode, size, mtime,
//     BLAKE3) and unlink, then flip the rows and drop the intents together.
// A kill anywhere leaves every file either on disk and `present`, or gone
// and (once the next gated run settles the intents) `offloaded`.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/offload/gate.hpp"
#include "engine/progress.hpp"
#include "engine/sync/mirror.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine {

struct OffloadOptions {
  std::vector<std::string> selectors;        // volume-relative; "." is the whole volume
  std::optional<std::int64_t> older_than_ns; // only files whose indexed mtime is older
  bool dry_run = false;
  bool per_file = false;                     // keep every refusal, not only aggregates
  std::optional<std::int64_t> now_ns;        // the clock evidence ages and --older-than use (tests); default now
  sync::TransportFactory transport;          // how destinations are read; default: the local transport
  // Tests: called right before (after=false) and right after (after=true)
  // the n-th unlink of the run, 1-based; a kill injected here is a kill at
  // an exact point of the code path.
  std::function<void(std::int64_t n, bool after)> on_unlink;
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
  std::int64_t copies_rehashed = 0;   // destination copies re-hashed right before their originals' unlink
  std::int64_t settled_offloaded = 0, settled_kept = 0;  // an earlier killed offload's intents, settled
  bool world_refused = false;         // a destination looked wrong: unreachable, alarmed, volatile, damaged
  std::vector<RefusalGroup> refusals;                         // aggregated by (target, cause)
  std::map<std::string, std::int64_t> satisfied;              // target -> files it satisfied
  std::vector<std::pair<std::string, GateRefusal>> per_file;  // with --per-file
  std::vector<std::pair<std::string, std::string>> drifted;   // path, what differed
  std::vector<std::string> unmatched_selectors;
};

// Throws Error(refused/usage) for preconditions (no policy, no selector,
// bad selector, volume disagreement — a refused run row is recorded for
// the latter) and Error(conflict) when another run holds the volume.
// `listener` hears the "offloading" phase of a real run: the files that
// passed the gate, each done once its copies were confirmed and it was
// removed or kept. A dry run reads nothing and reports no progress.
OffloadReport run_offload(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const OffloadOptions& opts, const ProgressListener& listener = {});

struct SettleReport {
  std::int64_t offloaded = 0;  // gone from disk: the killed offload did unlink them
  std::int64_t kept = 0;       // still on disk: they stay present
  std::int64_t undecided = 0;  // their folder could not be read; left for a later run
};
// Settles the intents a killed offload left on this volume from what the
// disk shows. Call only inside a gated run of a kind that conflicts with
// offload (every kind that touches the volume's bytes), so no live offload
// owns the intents. Cheap when there are none: one indexed count.
SettleReport settle_interrupted_offloads(store::Db& db, int volume_root, std::int64_t volume_id);

}  // namespace sq::engine
