#pragma once
// A thin, exception-based wrapper over one SQLite connection. squirrel keeps
// exactly one connection per process so the fixed pragmas apply everywhere,
// and every write transaction is BEGIN IMMEDIATE so check-then-write gates
// are atomic across processes.
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/hash.hpp"

namespace sq::store {

using Blob = std::vector<std::uint8_t>;
using Value = std::variant<std::monostate, std::int64_t, std::string, Blob>;

class Db;

// Told of every use of a prepared statement as it is reset, with the
// SQLite VM steps that use took. Tests install one to see every statement
// the engines run (query plans) and what each costs (growth with the number
// of files). One per process, so peer connections on other threads are
// seen too; an implementation must be thread-safe.
class StatementObserver {
 public:
  virtual ~StatementObserver() = default;
  virtual void used(const std::string& sql, std::int64_t vm_steps) = 0;
};
void set_statement_observer(StatementObserver* observer);  // nullptr: none

class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept;

  Stmt& bind(int index, const Value& v);
  Stmt& bind(int index, std::int64_t v) { return bind(index, Value{v}); }
  Stmt& bind(int index, int v) { return bind(index, Value{static_cast<std::int64_t>(v)}); }
  Stmt& bind(int index, const std::string& v) { return bind(index, Value{v}); }
  Stmt& bind(int index, const char* v) { return bind(index, Value{std::string(v)}); }
  Stmt& bind(int index, std::nullopt_t) { return bind(index, Value{}); }
  Stmt& bind_all(const std::vector<Value>& values);
  // A BLOB from bytes the caller holds: no Value, no vector in between.
  Stmt& bind_bytes(int index, std::string_view bytes);

  bool step();  // true while a row is available
  void run();   // step to completion
  void reset();

  bool is_null(int col) const;
  std::int64_t i64(int col) const;
  std::optional<std::int64_t> opt_i64(int col) const;
  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;
  Blob blob(int col) const;
  // The column's bytes without a copy; valid until the next step or reset.
  std::string_view bytes(int col) const;
  // A BLOB column (a name, a path) as a string of its bytes.
  std::string bytes_str(int col) const { return std::string(bytes(col)); }
  // A BLAKE3 column; a shorter value is zero-padded.
  Digest digest(int col) const;
  Value value(int col) const;
  int columns() const;

 private:
  Db* db_;
  std::string sql_;  // the cache key this statement goes back under
  sqlite3_stmt* stmt_ = nullptr;
};

struct OpenOptions {
  bool create = true;     // false: refuse when the file does not exist
  bool read_only = false;
};

class Db {
 public:
  static Db open(const std::filesystem::path& path, OpenOptions opts = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  Db(Db&& o) noexcept;

  void exec(std::string_view sql);
  sqlite3* handle() { return db_; }
  const std::filesystem::path& path() const { return path_; }
  std::int64_t changes() const;
  std::int64_t last_insert_id() const;

  // Convenience queries.
  std::optional<std::int64_t> query_i64(std::string_view sql, const std::vector<Value>& args = {});
  std::vector<std::vector<Value>> query_rows(std::string_view sql, const std::vector<Value>& args = {});
  void execute(std::string_view sql, const std::vector<Value>& args = {});

  [[noreturn]] void raise(int rc, std::string_view context) const;
  bool in_transaction() const;

 private:
  friend class Stmt;
  Db() = default;
  // Prepared statements are kept for reuse: the sync and index loops run
  // the same few statements per file, and preparing one costs more than
  // running it. A Stmt takes an idle one with its SQL text, or prepares.
  sqlite3_stmt* take_prepared(const std::string& sql);
  void give_back(std::string sql, sqlite3_stmt* stmt);
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  std::unordered_multimap<std::string, sqlite3_stmt*> idle_;
};

// RAII write transaction: BEGIN IMMEDIATE on construction, ROLLBACK unless
// commit() was called. Nested use is a programming error.
class Tx {
 public:
  explicit Tx(Db& db);
  ~Tx();
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace sq::store
