#pragma once
// Whole-database snapshots: online backups (VACUUM INTO), rotation that
// only ever deletes squirrel's own routine snapshots, integrity checks and
// restoring a snapshot over the live database.
#include <filesystem>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace sq::store {

// <dir>/index-<yyyymmddThhmmss.mmmZ>.db
std::filesystem::path default_backup_path(const std::filesystem::path& dir, std::int64_t at_ns);
// VACUUM INTO `to`, refusing an existing file; the copy is fsynced.
void backup_to(Db& db, const std::filesystem::path& to);
// Deletes the oldest `index-*.db` files in dir beyond `keep` (0 keeps all).
// pre-migration snapshots and foreign files are never touched.
std::vector<std::filesystem::path> rotate_backups(const std::filesystem::path& dir, int keep);

// PRAGMA integrity_check plus foreign_key_check; empty when clean.
std::vector<std::string> integrity_problems(Db& db);

struct SnapshotInfo {
  int schema_version = 0;
  bool intact = false;
  std::string problem;
};
// Opens the snapshot immutably (nothing is written beside it).
SnapshotInfo inspect_snapshot(const std::filesystem::path& snapshot);

struct RestoreResult {
  std::filesystem::path displaced;  // the previous live database; empty when there was none
};
// Replaces the live database file with a copy of `snapshot`. The old file
// and its -wal/-shm are kept as <live>.pre-restore-<ns>[-wal|-shm]; any
// failure puts everything back.
RestoreResult restore_snapshot(const std::filesystem::path& snapshot, const std::filesystem::path& live);

}  // namespace sq::store
