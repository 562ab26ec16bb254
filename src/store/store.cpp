#include "store/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/private_files.hpp"
#include "core/process.hpp"
#include "core/text.hpp"

namespace sq::store {

std::string resolve_node_name(const std::optional<std::string>& configured, const std::string& hostname) {
  if (configured) {
    if (!valid_name(*configured))
      throw Error(ErrorKind::config, fmt::format("node_name \"{}\" is not a valid name — use letters, digits, '_' "
                                                 "and '-', starting with a letter or digit",
                                                 escape_for_display(*configured)));
    return *configured;
  }
  std::string s;
  for (char c : hostname) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    s += ok ? c : '-';
  }
  auto first = s.find_first_not_of("-_");
  s = first == std::string::npos ? "" : s.substr(first);
  if (valid_name(s)) return s;
  return "node-" + to_hex(blake3(hostname)).substr(0, 12);
}

namespace {

void check_openable(const std::filesystem::path& path, bool create) {
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  if (!exists && !create)
    throw Error(ErrorKind::not_found,
                fmt::format("no database at {} — run `squirrel index <volume>` first or check --db", path.string()));
  if (exists && std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::usage, fmt::format("database path {} is a directory — point --db at a file", path.string()));
  auto dir = path.parent_path();
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(ErrorKind::not_found,
                fmt::format("database directory {} does not exist — create it or choose another --db", dir.string()));
  // WAL needs -wal and -shm files beside the database, so an unwritable
  // directory fails every write later; refuse up front, before touching anything.
  if (access(dir.c_str(), W_OK) != 0)
    throw Error(ErrorKind::io, fmt::format("database directory {} is not writable — fix its permissions or choose "
                                           "another --db",
                                           dir.string()));
}

// SQLite would create the file with the umask's mode (0644 as a rule);
// made here first, it is 0600, and SQLite gives its -wal and -shm the
// database's own mode when it creates them. One already there keeps its mode.
void create_database_file(const std::filesystem::path& path) {
  std::error_code ec;
  create_private_file(path, ec);
  if (ec)
    throw Error(ErrorKind::io, fmt::format("cannot write database {} ({}) — check that the file and its directory "
                                           "are writable",
                                           path.string(), ec.message()));
}

// Reads the header before SQLite touches the file, so a foreign file is
// refused without SQLite creating a -wal or -shm beside it.
void check_header(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0) return;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail_errno(fmt::format("cannot read database {}", path.string()), errno);
  char head[16] = {};
  std::size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  if (n < 16 || std::string(head, 16) != std::string("SQLite format 3\0", 16))
    throw Error(ErrorKind::corrupt, fmt::format("{} is not a squirrel database (not an SQLite file) — check --db or "
                                                "the config's db key",
                                                path.string()));
}

// Looks before anything is changed: PRAGMA journal_mode=WAL rewrites the
// file header, and migrating would add tables. An SQLite file without our
// version table but with objects belongs to another program; a version
// newer than the registry belongs to a newer squirrel. Both stay untouched.
// Both questions are asked in one read transaction: another process may
// be creating the schema of a brand-new database meanwhile, and between two
// separate reads its tables would appear without its version yet.
void refuse_foreign_or_newer(Db& db, const std::vector<Migration>& registry) {
  db.exec("BEGIN");
  int version = 0;
  std::int64_t objects = 0;
  try {
    version = schema_version(db);
    objects = db.query_i64("SELECT count(*) FROM sqlite_master").value_or(0);
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
  db.exec("COMMIT");
  if (version == 0 && objects > 0)
    throw Error(ErrorKind::corrupt, fmt::format("{} is not a squirrel database (an SQLite file of another program) — "
                                                "check --db or the config's db key",
                                                db.path().string()));
  if (!registry.empty() && version > registry.back().version)
    throw Error(ErrorKind::refused,
                fmt::format("database {} has schema v{} but this squirrel only knows v{} — upgrade squirrel",
                            db.path().string(), version, registry.back().version));
}

// Switching a database to WAL needs the file to itself, and SQLite answers
// "busy" at once instead of waiting through the busy timeout. Two processes
// opening one brand-new database both ask; the later one retries for about
// as long as the busy timeout would have waited.
void enable_wal(Db& db) {
  using namespace std::chrono_literals;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    int rc = sqlite3_exec(db.handle(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return;
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) db.raise(rc, "PRAGMA journal_mode=WAL");
    std::this_thread::sleep_for(10ms);
  }
}

void apply_pragmas(Db& db) {
  // 16 KiB pages: a first index inserts digests at random places in the
  // contents index, and every commit writes each page it touched to the
  // WAL. Fewer, larger pages cut a first index's database CPU by about a
  // sixth. Only a brand-new file takes this; an existing one keeps its size.
  db.exec("PRAGMA page_size=16384");
  enable_wal(db);
  db.exec("PRAGMA synchronous=FULL");
  // 16 MiB of page cache keeps a first index from re-reading its own B-tree
  // pages; larger would buy little and cost resident memory.
  db.exec("PRAGMA cache_size=-16384");
  db.exec("PRAGMA foreign_keys=ON");
}

std::int64_t ensure_self_node(Db& db, const std::string& name) {
  Tx tx(db);
  auto id = db.query_i64("SELECT id FROM nodes WHERE endpoint IS NULL");
  if (!id) {
    db.execute("INSERT INTO nodes(name, endpoint) VALUES (?, NULL)", {Value{name}});
    id = db.last_insert_id();
  }
  tx.commit();
  return *id;
}

}  // namespace

// SQLite asks short-lived connections to run PRAGMA optimize as they
// close: it refreshes the planner's statistics of a table only when its
// size changed a lot since, and analysis_limit bounds that to a sample.
// Only a command that changed rows does it, so a dry run or a status leaves
// the file as it found it. A store that another process is writing is left
// alone at once rather than after the busy timeout; the next command
// catches up.
Store::~Store() {
  sqlite3* h = db_.handle();
  if (!h || sqlite3_total_changes64(h) == 0) return;
  sqlite3_busy_timeout(h, 0);
  sqlite3_exec(h, "PRAGMA analysis_limit=400; PRAGMA optimize", nullptr, nullptr, nullptr);
}

Db open_peer_connection(const Db& db) {
  Db peer = Db::open(db.path(), {.create = false, .read_only = false});
  apply_pragmas(peer);
  return peer;
}

Store Store::open(const std::filesystem::path& path, const StoreOptions& opts) {
  auto abs = std::filesystem::absolute(path).lexically_normal();
  // A bad configured name is a config error: refuse before creating a file.
  auto node_name = resolve_node_name(opts.node_name, host_name());
  check_openable(abs, opts.create);
  if (opts.create) create_database_file(abs);
  check_header(abs);
  const auto& registry = opts.registry ? *opts.registry : migrations();
  Store s(Db::open(abs, {.create = opts.create, .read_only = false}));
  refuse_foreign_or_newer(s.db_, registry);
  apply_pragmas(s.db_);
  MigrateOptions mo{opts.snapshot_dir};
  s.migration_ = migrate(s.db_, registry, mo);
  s.self_node_name_ = node_name;
  s.self_node_id_ = ensure_self_node(s.db_, s.self_node_name_);
  auto stored = s.db_.query_rows("SELECT name FROM nodes WHERE id = ?", {Value{s.self_node_id_}});
  s.self_node_name_ = std::get<std::string>(stored.at(0).at(0));
  return s;
}

}  // namespace sq::store
