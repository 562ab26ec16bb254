#include "store/migrations.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/private_files.hpp"
#include "core/text.hpp"
#include "store/snapshots.hpp"

namespace sq::store {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> registry = {
      {1, "baseline: volumes, nodes, runs, runs_audit, hook_runs, contents, folders, files",
       [](Db& db) { db.exec(kSchemaV1); }},
      {2, "durability evidence (vector, advance log, push freshness), mirror ledger, destination alarms",
       [](Db& db) { db.exec(kSchemaV2); }},
      {3, "files and remote_paths rebuilt with CHECKs that need no temporary B-tree per row",
       [](Db& db) { db.exec(kSchemaV3); }},
      {4, "index of live mirror copies without a read-back checksum", [](Db& db) { db.exec(kSchemaV4); }},
      {5, "offload intent journal; database identity; mirror ledger indexed by content", [](Db& db) { db.exec(kSchemaV5); }},
      {6, "mirror ledger indexed by path", [](Db& db) { db.exec(kSchemaV6); }},
      {7, "lost mirror copies indexed", [](Db& db) { db.exec(kSchemaV7); }},
      {8, "forgotten volumes", [](Db& db) { db.exec(kSchemaV8); }},
      {9, "content-addressed and packed layouts: remote_objects, packs, pack_members, remote_packs",
       [](Db& db) { db.exec(kSchemaV9); }},
      {10, "a content may be a member of several packs (one per destination that needs it)",
       [](Db& db) { db.exec(kSchemaV10); }},
  };
  return registry;
}

int current_schema_version() { return migrations().back().version; }

int schema_version(Db& db) {
  auto exists = db.query_i64("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'");
  if (!exists || *exists == 0) return 0;
  return static_cast<int>(db.query_i64("SELECT COALESCE(MAX(version), 0) FROM schema_version").value_or(0));
}

namespace {

void check_registry(const std::vector<Migration>& registry) {
  if (registry.empty()) throw Error(ErrorKind::internal, "migration registry is empty");
  int prev = 0;
  for (const auto& m : registry) {
    if (m.version <= prev) throw Error(ErrorKind::internal, "migration registry is not strictly ascending");
    prev = m.version;
  }
}

std::filesystem::path snapshot_before(Db& db, int from, int to, const MigrateOptions& opts) {
  auto dir = opts.snapshot_dir.empty() ? db.path().parent_path() / "backups" : opts.snapshot_dir;
  std::error_code ec;
  create_private_directories(dir, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot create snapshot directory {}: {} — check permissions",
                                                 dir.string(), ec.message()));
  auto file = dir / fmt::format("pre-migration-v{}-to-v{}-{}.db", from, to, compact_utc(now_ns()));
  if (std::filesystem::exists(file))
    throw Error(ErrorKind::io, fmt::format("snapshot {} already exists — retry in a moment", file.string()));
  // backup_to flushes the copy and its directory entry: the snapshot must be
  // durable before the first step can commit.
  backup_to(db, file);
  return file;
}

void apply_step_in_tx(Db& db, const Migration& m) {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY) STRICT");
  m.apply(db);
  db.execute("INSERT INTO schema_version(version) VALUES (?)", {Value{std::int64_t{m.version}}});
  auto fk = db.query_rows("PRAGMA foreign_key_check");
  if (!fk.empty())
    throw Error(ErrorKind::corrupt, fmt::format("migration to v{} left dangling references; rolled back", m.version));
}

// Every transaction re-reads the version under the write lock, so two
// processes opening the same database at once never both run a step. A
// fresh database gets all steps in one transaction: there is nothing to
// protect step by step, and one commit is a third of a small first index.
void apply_steps(Db& db, const std::vector<Migration>& registry, bool fresh) {
  if (fresh) {
    Tx tx(db);
    int at = schema_version(db);
    for (const auto& m : registry)
      if (m.version > at) apply_step_in_tx(db, m);
    tx.commit();
    return;
  }
  for (const auto& m : registry) {
    Tx tx(db);
    if (schema_version(db) < m.version) apply_step_in_tx(db, m);
    tx.commit();
  }
}

}  // namespace

MigrateResult migrate(Db& db, const std::vector<Migration>& registry, const MigrateOptions& opts) {
  check_registry(registry);
  MigrateResult r;
  r.from = schema_version(db);
  r.to = registry.back().version;
  if (r.from > r.to)
    throw Error(ErrorKind::refused,
                fmt::format("database {} has schema v{} but this squirrel only knows v{} — upgrade squirrel",
                            db.path().string(), r.from, r.to));
  if (r.from == r.to) return r;
  if (r.from > 0) r.snapshot = snapshot_before(db, r.from, r.to, opts);
  // Steps may rebuild tables, which SQLite allows only with foreign keys off
  // (the pragma is ignored inside a transaction); each step checks them all
  // before it commits.
  auto enforced = db.query_i64("PRAGMA foreign_keys").value_or(0);
  db.exec("PRAGMA foreign_keys=OFF");
  try {
    apply_steps(db, registry, r.from == 0);
  } catch (...) {
    if (enforced) db.exec("PRAGMA foreign_keys=ON");
    throw;
  }
  if (enforced) db.exec("PRAGMA foreign_keys=ON");
  return r;
}

std::string dump_schema(Db& db) {
  std::string out;
  Stmt st(db,
          "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
          "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name");
  while (st.step()) out += st.text(0) + ";\n\n";
  return out;
}

}  // namespace sq::store

namespace sq::store {
std::string fresh_schema() {
  Db db = Db::open(":memory:");
  migrate(db, migrations(), {});
  return dump_schema(db);
}
}  // namespace sq::store
