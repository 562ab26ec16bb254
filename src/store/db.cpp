#include "store/db.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "core/error.hpp"

namespace sq::store {

namespace {

// Maps SQLite failures onto one-line messages with a next step.
std::string describe(sqlite3* db, int rc, std::string_view context, const std::filesystem::path& path) {
  int base = rc & 0xff;
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (base == SQLITE_NOTADB)
    return fmt::format("{} is not a squirrel database (not an SQLite file) — check --db or the config's db key",
                       path.string());
  if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
    return fmt::format("database {} is busy during {} ({}) — another squirrel is writing; retry shortly",
                       path.string(), context, detail);
  if (base == SQLITE_READONLY || base == SQLITE_CANTOPEN || base == SQLITE_PERM)
    return fmt::format("cannot write database {} ({}) — check that the file and its directory are writable",
                       path.string(), detail);
  if (base == SQLITE_CORRUPT)
    return fmt::format("database {} is corrupt ({}) — run `squirrel db check`: it lists the damage and the snapshot "
                       "to restore",
                       path.string(), detail);
  if (base == SQLITE_FULL)
    return fmt::format("disk full while writing {} — free space and retry", path.string());
  return fmt::format("database error during {}: {}", context, detail);
}

// A damaged or foreign file is `corrupt`, so a command can tell it from a
// passing failure (busy, full, unwritable).
ErrorKind kind_of(int rc) {
  int base = rc & 0xff;
  return base == SQLITE_CORRUPT || base == SQLITE_NOTADB ? ErrorKind::corrupt : ErrorKind::database;
}

}  // namespace

void Db::raise(int rc, std::string_view context) const {
  throw Error(kind_of(rc), describe(db_, rc, context, path_));
}

namespace {

// Must precede the first connection.
// - Memory statistics cost a global mutex round trip on every SQLite
//   allocation; nothing here reads them.
// - A statement that may abort half-way (every UPDATE of a table with an
//   immutability trigger) keeps the old pages it changes in a statement
//   journal. With 16 KiB pages SQLite's default spill threshold (64 KiB)
//   moves it to a file in /var/tmp after four pages, for the rest of the
//   transaction: a sync of 100k files wrote 3.5 GB there. A larger threshold
//   (256 KiB – 4 MiB tried) is worse: SQLite 3.40 fails a statement whose
//   journal outgrows it with "database or disk is full", with no error from
//   the file system (a re-index of 100k files did;
//   StoreScale.AWholeVolumeUpdateOfManyRowsSucceeds). So statement journals
//   stay in memory (-1): a journal holds only pages one statement changed,
//   which the WAL receives anyway.
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1);
  });
}

}  // namespace

Db Db::open(const std::filesystem::path& path, OpenOptions opts) {
  configure_sqlite_once();
  Db db;
  db.path_ = path;
  // No per-call mutex: a connection belongs to one thread at a time (a
  // thread that writes concurrently opens a peer connection), and the mutex
  // round trips cost a measurable share of a first index.
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (opts.create && !opts.read_only) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = describe(db.db_, rc, "open", path);
    sqlite3_close_v2(db.db_);
    db.db_ = nullptr;
    throw Error(kind_of(rc), msg);
  }
  sqlite3_busy_timeout(db.db_, 10000);
  sqlite3_extended_result_codes(db.db_, 1);
  return db;
}

Db::Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), idle_(std::move(o.idle_)) {
  o.db_ = nullptr;
  o.idle_.clear();
}

Db::~Db() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
  if (db_) sqlite3_close_v2(db_);
}

namespace {

std::atomic<StatementObserver*> g_observer{nullptr};

void report_use(const std::string& sql, sqlite3_stmt* stmt) {
  if (auto* o = g_observer.load(std::memory_order_acquire))
    o->used(sql, sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_VM_STEP, 1));
}

}  // namespace

void set_statement_observer(StatementObserver* observer) { g_observer.store(observer, std::memory_order_release); }

namespace {
// Statements built with a varying number of placeholders have many texts;
// past this many idle ones, a returned statement is finalized instead.
constexpr std::size_t kMaxIdleStatements = 128;
}  // namespace

sqlite3_stmt* Db::take_prepared(const std::string& sql) {
  auto it = idle_.find(sql);
  if (it != idle_.end()) {
    sqlite3_stmt* stmt = it->second;
    idle_.erase(it);
    return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) raise(rc, std::string_view(sql).substr(0, 60));
  return stmt;
}

// A statement goes back reset (so it holds no read transaction open) and
// with its bindings cleared (so no value leaks into its next use).
void Db::give_back(std::string sql, sqlite3_stmt* stmt) {
  report_use(sql, stmt);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (idle_.size() >= kMaxIdleStatements) {
    sqlite3_finalize(stmt);
    return;
  }
  idle_.emplace(std::move(sql), stmt);
}

void Db::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) raise(rc, s.substr(0, 60));
}

std::int64_t Db::changes() const { return sqlite3_changes64(db_); }
std::int64_t Db::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
bool Db::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::optional<std::int64_t> Db::query_i64(std::string_view sql, const std::vector<Value>& args) {
  Stmt st(*this, sql);
  st.bind_all(args);
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return st.i64(0);
}

std::vector<std::vector<Value>> Db::query_rows(std::string_view sql, const std::vector<Value>& args) {
  Stmt st(*this, sql);
  st.bind_all(args);
  std::vector<std::vector<Value>> rows;
  while (st.step()) {
    std::vector<Value> row;
    for (int c = 0; c < st.columns(); ++c) row.push_back(st.value(c));
    rows.push_back(std::move(row));
  }
  return rows;
}

void Db::execute(std::string_view sql, const std::vector<Value>& args) {
  Stmt st(*this, sql);
  st.bind_all(args);
  st.run();
}

Stmt::Stmt(Db& db, std::string_view sql) : db_(&db), sql_(sql), stmt_(db.take_prepared(sql_)) {}

Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), sql_(std::move(o.sql_)), stmt_(o.stmt_) { o.stmt_ = nullptr; }

Stmt::~Stmt() {
  if (stmt_) db_->give_back(std::move(sql_), stmt_);
}

Stmt& Stmt::bind(int index, const Value& v) {
  int rc = SQLITE_OK;
  if (std::holds_alternative<std::monostate>(v)) {
    rc = sqlite3_bind_null(stmt_, index);
  } else if (auto* i = std::get_if<std::int64_t>(&v)) {
    rc = sqlite3_bind_int64(stmt_, index, *i);
  } else if (auto* s = std::get_if<std::string>(&v)) {
    rc = sqlite3_bind_text64(stmt_, index, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } else {
    const auto& b = std::get<Blob>(v);
    rc = sqlite3_bind_blob64(stmt_, index, b.empty() ? "" : static_cast<const void*>(b.data()), b.size(),
                             SQLITE_TRANSIENT);
  }
  if (rc != SQLITE_OK) db_->raise(rc, "bind");
  return *this;
}

Stmt& Stmt::bind_bytes(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : static_cast<const void*>(bytes.data()), bytes.size(),
                               SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db_->raise(rc, "bind");
  return *this;
}

Stmt& Stmt::bind_all(const std::vector<Value>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) bind(static_cast<int>(i + 1), values[i]);
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int err = rc;
  sqlite3_reset(stmt_);
  db_->raise(err, sqlite3_sql(stmt_) ? std::string_view(sqlite3_sql(stmt_)).substr(0, 60) : "step");
}

void Stmt::run() {
  while (step()) {
  }
}

void Stmt::reset() {
  report_use(sql_, stmt_);
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::int64_t Stmt::i64(int col) const { return sqlite3_column_int64(stmt_, col); }
std::optional<std::int64_t> Stmt::opt_i64(int col) const {
  if (is_null(col)) return std::nullopt;
  return i64(col);
}
std::string Stmt::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
Blob Stmt::blob(int col) const {
  auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? Blob(p, p + n) : Blob{};
}
std::string_view Stmt::bytes(int col) const {
  auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string_view();
}
Digest Stmt::digest(int col) const {
  Digest d{};
  auto b = bytes(col);
  std::copy_n(b.begin(), std::min(b.size(), d.size()), d.begin());
  return d;
}
int Stmt::columns() const { return sqlite3_column_count(stmt_); }

Value Stmt::value(int col) const {
  switch (sqlite3_column_type(stmt_, col)) {
    case SQLITE_NULL: return Value{};
    case SQLITE_INTEGER: return Value{i64(col)};
    case SQLITE_BLOB: return Value{blob(col)};
    default: return Value{text(col)};
  }
}

Tx::Tx(Db& db) : db_(db) {
  if (db.in_transaction()) throw Error(ErrorKind::internal, "nested write transaction");
  db_.exec("BEGIN IMMEDIATE");
}

Tx::~Tx() {
  if (!done_ && db_.in_transaction()) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

namespace {

// A statement still on a row keeps its connection reading past the commit,
// and the checkpoint SQLite runs after the commit then fails: the WAL only
// grows. Checked in debug builds (the sanitizer test run), where a path the
// tests reach fails loudly instead of slowly.
void require_no_statement_on_a_row([[maybe_unused]] sqlite3* db) {
#ifndef NDEBUG
  for (sqlite3_stmt* st = sqlite3_next_stmt(db, nullptr); st; st = sqlite3_next_stmt(db, st))
    if (sqlite3_stmt_busy(st))
      throw Error(ErrorKind::internal, fmt::format("commit with a statement still on a row: {}", sqlite3_sql(st)));
#endif
}

}  // namespace

void Tx::commit() {
  require_no_statement_on_a_row(db_.handle());
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace sq::store
