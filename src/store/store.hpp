#pragma once
// The index database: one SQLite connection per process with fixed pragmas
// (WAL, synchronous=FULL, foreign keys on, a busy timeout), migrated forward
// on open.
#include <filesystem>
#include <optional>
#include <string>

#include "store/db.hpp"
#include "store/migrations.hpp"

namespace sq::store {

struct StoreOptions {
  std::optional<std::string> node_name;   // from config; else the hostname
  bool create = true;                     // false: a missing DB file is an error
  std::filesystem::path snapshot_dir;     // pre-migration snapshots; default <db dir>/backups
  const std::vector<Migration>* registry = nullptr;  // tests inject; default migrations()
};

// Another connection to the same database with the same settings, for a
// thread of its own: connections are opened without a mutex, so each one is
// used by a single thread at a time.
Db open_peer_connection(const Db& db);

class Store {
 public:
  static Store open(const std::filesystem::path& path, const StoreOptions& opts = {});
  ~Store();
  Store(Store&&) noexcept = default;
  Db& db() { return db_; }
  std::int64_t self_node_id() const { return self_node_id_; }
  const std::string& self_node_name() const { return self_node_name_; }
  const MigrateResult& migration() const { return migration_; }

 private:
  explicit Store(Db db) : db_(std::move(db)) {}
  Db db_;
  std::int64_t self_node_id_ = 0;
  std::string self_node_name_;
  MigrateResult migration_;
};

// node_name if given (must satisfy the name rule), else the hostname with
// every character outside [A-Za-z0-9_-] turned into '-' and leading '-'/'_'
// trimmed; if nothing usable is left, "node-" plus 12 hex digits of the
// BLAKE3 of the raw hostname (deterministic on this machine).
std::string resolve_node_name(const std::optional<std::string>& configured, const std::string& hostname);

}  // namespace sq::store
