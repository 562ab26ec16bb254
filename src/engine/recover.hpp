#pragma once
// `squirrel recover --from <destination>`: the way back after losing the
// machine (or its database). Discovery reads only: the index snapshots
// that syncs left at the destination, newest first, and what each
// configured volume needs. Executing installs one snapshot as the index
// database (the front end asks first and keeps the old file), then writes
// the volume marker into each volume folder that is positively empty, so
// `restore` and then `sync` to the same destination simply work.
//
// | situation of a volume                      | recover does             | next step                 |
// |--------------------------------------------|--------------------------|---------------------------|
// | folder empty, index knows the volume       | writes the marker        | squirrel restore <v>      |
// | folder holds the volume's marker           | nothing                  | squirrel restore <v>      |
// | folder missing                             | nothing (disk unmounted?)| create or mount, run again|
// | folder holds files but no marker           | nothing (not positively empty) | inspect it          |
// | configured path ≠ path the index recorded  | nothing                  | squirrel volumes move     |
// | index does not know the volume             | nothing                  | squirrel restore <v> (reads receipts) |
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/sync/mirror.hpp"
#include "store/db.hpp"
#include "store/snapshots.hpp"

namespace sq::engine {

struct RemoteSnapshot {
  std::string volume;    // the volume folder at the destination that holds it
  std::string name;      // index-<yyyymmddThhmmss.mmmZ>[-run-<id>].db
  std::string location;  // <volume>/.squirrel-index/<name>
  std::optional<std::int64_t> taken_at_ns, run_id;  // parsed from the name
  std::int64_t size = 0;
};

struct RecoverPlan {
  std::string destination, root;
  config::Destination dest;  // how to reach it again
  std::vector<RemoteSnapshot> snapshots;  // newest first (names of unknown age last)
  // The highest run id the destination names anywhere (receipts, history,
  // staging, snapshots): the recovered database's runs continue above it,
  // so no run of its ever reuses a name a lost run wrote there.
  std::int64_t highest_run = 0;
  std::map<std::string, std::int64_t> newest_receipt;  // volume folder -> run id of its newest receipt
};

// Reads only. Throws Error(refused) when the root is not there (unmounted)
// and Error(io) when a listing fails; no snapshot is an empty list.
RecoverPlan plan_recover(const config::Config& cfg, const std::string& destination,
                         const sync::TransportFactory& transport = {});

// Copies snapshots into `dir`, the chosen one (a 1-based position in the
// plan's list or a file name) or else the newest that is intact and of a
// schema this squirrel opens; skipped ones are reported through `warn`.
struct FetchedSnapshot {
  RemoteSnapshot from;
  std::filesystem::path file;
  store::SnapshotInfo info;
};
using RecoverWarn = std::function<void(const std::string&)>;
FetchedSnapshot fetch_snapshot(const RecoverPlan& plan, const std::optional<std::string>& choice,
                               const std::filesystem::path& dir, const RecoverWarn& warn,
                               const sync::TransportFactory& transport = {});

struct VolumeRecovery {
  std::string volume;
  enum class State { ready, marker_written, marker_wanted, folder_missing, holds_files, path_differs, not_indexed };
  State state = State::ready;
  std::string detail;     // why, and what to do
  std::string next;       // the command to run next ("" when none)
  // Set when the destination holds receipts of pushes the index does not
  // know (a snapshot older than the mirror).
  std::string warning;
};
std::string_view to_string(VolumeRecovery::State s);

// Judges every configured volume that syncs to the destination; with
// `write_markers`, writes the marker where the table above says so.
std::vector<VolumeRecovery> prepare_volumes(const config::Config& cfg, store::Db& db, const RecoverPlan& plan,
                                            bool write_markers);

// The audit run of an executed recovery (kind audit, volumeless).
// Its id is above every run id the destination names.
std::int64_t record_recovery(store::Db& db, const RecoverPlan& plan, const FetchedSnapshot* snapshot,
                             const std::vector<VolumeRecovery>& volumes);

}  // namespace sq::engine
