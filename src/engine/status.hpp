#pragma once
// "Am I safe?": the status model shared by `squirrel status` (and later the
// TUI). Built from the config and the index, plus one statfs of each local
// destination root — no destination is read or written — so it is cheap
// enough to run on every prompt.
//
// Lights are ordered neutral < green < amber < red; every light below is the
// maximum of the rules that apply. The rules, and nothing else:
//
// Target (one row per name in sync_to ∪ offload_requires):
//   sync state, the first that applies:
//     alarm        a destination alarm is latched on it                  red
//     refused      the last finished sync was refused                    red
//     needs-init   …refused, mentions --init, and no sync ever succeeded amber
//     failed       the last finished sync failed or was aborted          red
//     partial      the last finished sync was partial                    amber
//     —            never synced and not in sync_to (offload-only)        neutral
//     never-synced never synced                                          amber
//     stalled      sync_every set and the last sync is older than 3×     red
//     late         sync_every set and the last sync is older than 1×     amber
//     ok           otherwise                                             green
//   durability, only while the volume has present files:
//     an offload_requires target without any evidence                    red
//     evidence does not cover every present file (not durable)           amber
//     evidence older than offload_max_evidence_age, or of unknown age    amber
//   lost copies: present files whose copy a verify found gone or changed
//     and no sync has written again (acknowledging the alarm does not
//     end this)                                                          amber
//   disk (local destinations):
//     on a volatile filesystem (tmpfs …): durable is "no" and, whatever
//     the evidence says, it counts for nothing        red if offload_requires
//                                                      names it, else amber
//     on the volume's own filesystem: a warning only (the copy survives a
//     deleted file, not a dead disk); the light is unchanged
// Volume: the maximum of its targets and
//     never indexed, or the last finished index run was not a success   amber
//     the last finished index run is older than 7 days                  amber
//     an interrupted offload left intents the next gated run will settle amber
//     no targets at all (nothing copies it)                              amber
//     entries under names squirrel reserves (never copied: unprotected)  amber
//     its folder is gone, or its marker is missing or names another
//       volume or database (the check every command makes first)        red
//     never indexed here, but its marker names another volume or
//       another index database                                          red
//     files added, gone or changed (size, mtime) since the last index,
//       found by comparing up to kDriftBudget entries, the most recently
//       changed folders first; past the budget only the 7-day rule speaks amber
//   and nothing is ready to offload while a required target is volatile.
// Report: the maximum of its volumes; without a volume filter, any latched
//     alarm (even on a destination no volume uses) is red.
// Exit code: 0 neutral or green, 1 amber, 2 red.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/offload/gate.hpp"
#include "store/alarms.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine {

enum class Light { neutral, green, amber, red };
std::string_view to_string(Light l);
int exit_code_for(Light l);

inline constexpr std::int64_t kIndexMaxAgeNs = 7LL * 86400LL * 1000000000LL;

enum class TargetRole { sync, offload, both };
enum class TargetKind { destination, node, unknown };
enum class SyncState { alarm, refused, needs_init, failed, partial, offload_only, never_synced, stalled, late, ok };
std::string_view to_string(TargetRole r);
std::string_view to_string(TargetKind k);
std::string_view to_string(SyncState s);

struct RunBrief {
  std::int64_t id = 0;
  store::RunStatus status = store::RunStatus::success;
  std::int64_t at_ns = 0;  // when it ended (started for a run without an end)
  std::string error;
};

struct EvidenceStatus {
  std::int64_t components = 0;                 // 0: no evidence at all
  std::vector<std::string> methods;            // distinct, sorted; "unknown" for a methodless component
  bool age_unknown = false;                    // some component was never verified
  std::optional<std::int64_t> oldest_verified_at_ns;  // over all components, when every age is known
  std::optional<std::int64_t> max_age_ns;      // the volume's offload_max_evidence_age; empty: off
  bool stale = false;                          // unknown age, or older than max_age
};

struct TargetStatus {
  std::string name;
  TargetRole role = TargetRole::sync;
  TargetKind kind = TargetKind::destination;
  std::optional<RunBrief> last_sync;  // the last finished sync of this volume to it
  SyncState state = SyncState::never_synced;
  std::optional<bool> durable;        // empty: nothing present to cover (n/a)
  EvidenceStatus evidence;
  Light light = Light::neutral;
  std::vector<std::string> reasons;   // why the light is not green, one line each
  std::string volatile_fs;            // the memory filesystem it is on ("" on a disk or not local)
  std::vector<std::string> warnings;  // worth knowing, not changing the light (same disk as the volume)
};

// What a bounded comparison of the tree with the index found (status_drift.cpp).
struct TreeDrift {
  std::int64_t examined = 0;  // entries and rows compared
  std::int64_t changed = 0;   // files added, gone, or of another size or mtime
  std::string first;          // the first changed path
  bool complete = false;      // every folder was compared within the budget
};
struct OffloadReadiness {
  bool has_policy = false;            // offload_requires is set
  std::int64_t present_files = 0, present_bytes = 0;
  std::int64_t ready_files = 0, ready_bytes = 0;  // would pass the gate for every required target now
};

struct VolumeStatus {
  std::string name, path;
  bool indexed = false;                   // some index run succeeded (or was partial)
  std::optional<RunBrief> last_index;     // the last finished index run
  std::vector<TargetStatus> targets;      // sync_to first, then offload_requires, de-duplicated
  OffloadReadiness offload;
  // Entries under names squirrel reserves, which nothing copies: those the
  // last completed index reported, plus rows an older index still records
  // as present under such a name.
  std::int64_t unprotected = 0;
  std::optional<TreeDrift> drift;         // empty: the tree could not be compared
  Light light = Light::neutral;
  std::vector<std::string> reasons;       // volume-level reasons (index, no targets)
};

struct StatusReport {
  std::int64_t now_ns = 0;
  std::optional<std::string> scope;   // the volume asked for; empty: every configured volume
  std::vector<store::Alarm> alarms;   // in scope: all, or those on the volume's targets
  std::vector<VolumeStatus> volumes;  // sorted by name
  Light overall = Light::neutral;
  // Worth knowing, not changing the light: squirrel's files that other
  // accounts can read (engine/privacy.hpp), filled by the front end.
  std::vector<std::string> warnings;
};

// `st` may be null when no index database exists yet: every volume then
// reads as never indexed. An unknown `volume` throws Error(not_found).
StatusReport build_status(const config::Config& cfg, store::Store* st, const std::optional<std::string>& volume,
                          std::int64_t now_ns);

// ---- reusable pieces ----------------------------------------------------

// Compares the tree under `root` with the volume's rows by size and mtime,
// the folders most recently changed first, until `budget` entries.
TreeDrift tree_drift(store::Db& db, std::int64_t volume_id, int root, std::int64_t budget);
inline constexpr std::int64_t kDriftBudget = 2048;

// A present file as the offload gate sees it, plus its size.
struct PresentFile {
  GateFile gate;
  std::int64_t size = 0;
};
// Every present file of the volume outside reserved subtrees, in one query,
// with the origin coordinates of data-model §6.1. Paths are filled only when
// asked for (status does not need them, and 100k strings are not free).
// `reserved_present`, when given, receives the number of present rows that
// lie under reserved names (recorded by an index older than that rule).
std::vector<PresentFile> load_present_files(store::Db& db, std::int64_t volume_id, std::int64_t self_node_id,
                                            bool with_paths, std::int64_t* reserved_present = nullptr);
// Per origin node, the highest origin run among `files` — the same answer as
// store::present_origin_maxima, computed without a second pass.
std::vector<store::OriginMax> origin_maxima_of(const std::vector<PresentFile>& files);
// True when every (node, run) of `present` has a component at or beyond it.
bool vector_covers(const std::vector<store::Component>& vector, const std::vector<store::OriginMax>& present);

}  // namespace sq::engine
