#pragma once
// Forward-only schema migrations, registered in code.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace sq::store {

struct Migration {
  int version;                       // the version this step produces
  std::string description;
  std::function<void(Db&)> apply;    // runs inside the step's transaction
};

extern const char* const kSchemaV1;
extern const char* const kSchemaV2;
extern const char* const kSchemaV3;
extern const char* const kSchemaV4;
extern const char* const kSchemaV5;
extern const char* const kSchemaV6;
extern const char* const kSchemaV7;
extern const char* const kSchemaV8;
extern const char* const kSchemaV9;
extern const char* const kSchemaV10;

// The registry of this binary, strictly ascending.
const std::vector<Migration>& migrations();
int current_schema_version();

struct MigrateOptions {
  // Where pre-migration snapshots go; default <dir of db>/backups.
  std::filesystem::path snapshot_dir;
};

struct MigrateResult {
  int from = 0;
  int to = 0;
  std::filesystem::path snapshot;  // empty for a fresh database
};

// Brings db to the newest version of `registry`. Refuses a database newer
// than the registry. An existing database is snapshotted (VACUUM INTO)
// before its first step runs. Each step commits together with its version row.
MigrateResult migrate(Db& db, const std::vector<Migration>& registry, const MigrateOptions& opts);

int schema_version(Db& db);

// Flattened DDL of the live database: tables, indexes and triggers in a
// stable order (what `squirrel db schema` prints and schema.sql holds).
std::string dump_schema(Db& db);

}  // namespace sq::store

namespace sq::store {
// DDL of a fresh database built from this binary's registry, in memory.
std::string fresh_schema();
}  // namespace sq::store
