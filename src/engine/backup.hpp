#pragma once
// `squirrel backup`: what a restic or borg user types. For each volume it
// indexes, then syncs to every target in its sync_to, and finally judges
// the volumes as `status` does. A volume whose index fails is not synced
// (its copies would be pushed from an index that does not describe the
// tree). Each step's refusal or failure is recorded and the next volume
// goes on; nothing is retried.
//
// Exit code (the front end's): the status light of the backed-up volumes
// (0 green, 1 amber, 2 red), raised to red when a step failed or was
// refused and to amber when one was partial.
#include <optional>
#include <string>
#include <vector>

#include "engine/index.hpp"
#include "engine/status.hpp"
#include "engine/sync/mirror.hpp"

namespace sq::engine {

struct BackupOptions {
  std::vector<std::string> volumes;  // empty: every volume with a sync_to
  bool shallow = false;              // index trusting size+mtime of unchanged files
  bool init = false;                 // first sync to a destination: sync --init
  sync::TransportFactory transport;  // tests inject faults here
};

struct BackupSync {
  std::string destination;
  std::optional<sync::SyncReport> report;
  std::string error;  // a refusal or failure that escaped the sync (report empty)
};

struct BackupVolume {
  std::string name;
  std::optional<IndexReport> index;
  std::string index_error;  // the index refused or failed: nothing was synced
  std::vector<BackupSync> syncs;
};

struct BackupReport {
  std::vector<BackupVolume> volumes;
  StatusReport status;  // the backed-up volumes afterwards
  Light light = Light::neutral;  // the status light, raised by failed or partial steps
};

struct BackupListeners {
  IndexListener index;
  sync::SyncListener sync;
  std::function<void(const std::string& volume, const std::string& step)> step;  // "index" or a destination
};

// The volumes a backup covers. Throws Error(not_found) for an unknown
// volume and Error(usage) when none has a sync_to; touches nothing, so a
// front end can ask before it opens the database.
std::vector<std::string> volumes_to_back_up(const config::Config& cfg, const BackupOptions& opts);

// Throws what volumes_to_back_up throws; every other failure is recorded
// in the report.
BackupReport run_backup(const config::Config& cfg, store::Store& st, const BackupOptions& opts,
                        const BackupListeners& listeners, std::int64_t now_ns);

}  // namespace sq::engine
