#include "store/runs.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/text.hpp"

namespace sq::store {

namespace {

constexpr std::string_view kKindNames[] = {"index", "audit", "sync", "restore", "offload", "verify"};
constexpr std::string_view kStatusNames[] = {"running", "success", "partial", "failed", "refused", "aborted"};

// Which kinds may not run at the same time on one volume. Each entry is an
// unordered pair, so the relation is symmetric by construction.
// - offload deletes user bytes: it excludes every other kind.
// - index and audit both flag unseen rows missing with their own run id.
// - sync plans from and advances evidence to the index: no index or audit
//   may commit underneath it (we chose exclusion over the reference's
//   one-way gate, so symmetry holds without relying on snapshot pinning).
// - restore writes into the volume tree, which an index, audit or sync
//   would otherwise observe half done.
// - two syncs or two verifies of one destination would race on its ledger.
enum class Scope { volume, same_destination };
struct ConflictRule {
  RunKind a, b;
  Scope scope;
};
using K = RunKind;
constexpr ConflictRule kConflicts[] = {
    {K::offload, K::offload, Scope::volume},          {K::offload, K::index, Scope::volume},
    {K::offload, K::audit, Scope::volume},            {K::offload, K::sync, Scope::volume},
    {K::offload, K::restore, Scope::volume},          {K::offload, K::verify, Scope::volume},
    {K::index, K::index, Scope::volume},              {K::index, K::audit, Scope::volume},
    {K::audit, K::audit, Scope::volume},              {K::sync, K::index, Scope::volume},
    {K::sync, K::audit, Scope::volume},               {K::sync, K::sync, Scope::same_destination},
    {K::restore, K::restore, Scope::volume},          {K::restore, K::index, Scope::volume},
    {K::restore, K::audit, Scope::volume},            {K::restore, K::sync, Scope::volume},
    {K::verify, K::verify, Scope::same_destination},  {K::verify, K::sync, Scope::same_destination},
};

}  // namespace

std::string_view to_string(RunKind k) { return kKindNames[static_cast<int>(k)]; }
std::string_view to_string(RunStatus s) { return kStatusNames[static_cast<int>(s)]; }

std::optional<RunKind> parse_run_kind(std::string_view s) {
  for (int i = 0; i < 6; ++i)
    if (kKindNames[i] == s) return static_cast<RunKind>(i);
  return std::nullopt;
}

std::optional<RunStatus> parse_run_status(std::string_view s) {
  for (int i = 0; i < 6; ++i)
    if (kStatusNames[i] == s) return static_cast<RunStatus>(i);
  return std::nullopt;
}

bool is_terminal(RunStatus s) { return s != RunStatus::running; }

bool kind_has_destination(RunKind k) { return k == K::sync || k == K::restore || k == K::verify; }

bool runs_conflict(const RunSubject& a, const RunSubject& b) {
  if (!a.volume_id || !b.volume_id || *a.volume_id != *b.volume_id) return false;
  for (const auto& rule : kConflicts) {
    bool match = (rule.a == a.kind && rule.b == b.kind) || (rule.a == b.kind && rule.b == a.kind);
    if (!match) continue;
    return rule.scope == Scope::volume || a.destination == b.destination;
  }
  return false;
}

void append_audit(Db& db, std::int64_t run_id, std::string_view transition, const std::optional<std::string>& op,
                  std::int64_t at_ns, const std::string& note) {
  db.execute("INSERT INTO runs_audit(run_id, transition, operator, at_ns, note) VALUES (?,?,?,?,?)",
             {Value{run_id}, Value{std::string(transition)}, op ? Value{*op} : Value{}, Value{at_ns},
              note.empty() ? Value{} : Value{note}});
}

namespace {

constexpr const char* kRunColumns =
    "r.id, r.kind, r.volume_id, COALESCE(v.name, ''), COALESCE(r.destination, ''), r.started_at_ns, "
    "r.ended_at_ns, r.status, COALESCE(r.error, ''), r.file_count, r.changed_count, r.shallow "
    "FROM runs r LEFT JOIN volumes v ON v.id = r.volume_id";

RunRow read_run(const Stmt& st) {
  RunRow r;
  r.id = st.i64(0);
  r.kind = parse_run_kind(st.text(1)).value_or(RunKind::index);
  r.volume_id = st.opt_i64(2);
  r.volume_name = st.text(3);
  r.destination = st.text(4);
  r.started_at_ns = st.i64(5);
  r.ended_at_ns = st.opt_i64(6);
  r.status = parse_run_status(st.text(7)).value_or(RunStatus::failed);
  r.error = st.text(8);
  r.file_count = st.i64(9);
  r.changed_count = st.opt_i64(10);
  if (auto s = st.opt_i64(11)) r.shallow = *s != 0;
  return r;
}

std::optional<RunRow> first_blocker(Db& db, const RunSubject& subject) {
  if (!subject.volume_id) return std::nullopt;
  Stmt st(db, std::string("SELECT ") + kRunColumns + " WHERE r.status = 'running' AND r.volume_id = ? ORDER BY r.id");
  st.bind(1, *subject.volume_id);
  while (st.step()) {
    RunRow row = read_run(st);
    if (runs_conflict(subject, RunSubject{row.kind, row.volume_id, row.destination})) return row;
  }
  return std::nullopt;
}

void validate_subject(const RunSubject& s) {
  if (kind_has_destination(s.kind) != !s.destination.empty())
    throw Error(ErrorKind::internal,
                fmt::format("a {} run {} a destination", to_string(s.kind),
                            kind_has_destination(s.kind) ? "needs" : "must not have"));
}

std::int64_t insert_run(Db& db, const RunSubject& s, const BeginOptions& o, RunStatus status, std::int64_t now,
                        const std::string& error) {
  bool terminal = is_terminal(status);
  // NULL lets SQLite number the run (one above the highest id).
  Value id{};
  if (o.id_above > 0 && db.query_i64("SELECT COALESCE(MAX(id), 0) FROM runs").value_or(0) < o.id_above)
    id = Value{o.id_above + 1};
  db.execute(
      "INSERT INTO runs(id, kind, volume_id, destination, started_at_ns, ended_at_ns, status, error, shallow, "
      "peer_node_id, correlated_run_id, owner_pid, owner_boot_id, owner_start_ticks) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      {id, Value{std::string(to_string(s.kind))}, s.volume_id ? Value{*s.volume_id} : Value{},
       s.destination.empty() ? Value{} : Value{s.destination}, Value{now}, terminal ? Value{now} : Value{},
       Value{std::string(to_string(status))}, error.empty() ? Value{} : Value{error},
       o.shallow ? Value{std::int64_t{*o.shallow ? 1 : 0}} : Value{},
       o.peer_node_id ? Value{*o.peer_node_id} : Value{}, o.correlated_run_id ? Value{*o.correlated_run_id} : Value{},
       Value{o.owner.pid}, Value{o.owner.boot_id}, Value{o.owner.start_ticks}});
  std::int64_t run_id = db.last_insert_id();
  if (terminal) append_audit(db, run_id, "finish", std::nullopt, now, std::string(to_string(status)));
  return run_id;
}

}  // namespace

BeginResult begin_run(Db& db, const RunSubject& subject, const BeginOptions& opts) {
  validate_subject(subject);
  Tx tx(db);
  reap_dead_owners_in_tx(db);
  BeginResult result;
  std::int64_t now = now_ns();
  result.blocker = first_blocker(db, subject);
  if (result.blocker) {
    auto msg = fmt::format("already running (run={}, {}, started {})", result.blocker->id,
                           to_string(result.blocker->kind), rfc3339_utc(result.blocker->started_at_ns));
    result.refused_run_id = insert_run(db, subject, opts, RunStatus::refused, now, msg);
  } else {
    result.run_id = insert_run(db, subject, opts, RunStatus::running, now, "");
  }
  tx.commit();
  return result;
}

std::string blocked_message(const RunRow& blocker) {
  return fmt::format("already running (run={}, {}, started {}) — retry when it finishes; if its process is gone, "
                     "`squirrel runs fail {}` ends it",
                     blocker.id, to_string(blocker.kind), rfc3339_utc(blocker.started_at_ns), blocker.id);
}

std::int64_t begin_run_or_throw(Db& db, const RunSubject& subject, const BeginOptions& opts) {
  auto begun = begin_run(db, subject, opts);
  if (!begun.began()) throw Error(ErrorKind::conflict, blocked_message(*begun.blocker));
  return begun.run_id;
}

std::int64_t record_terminal_run(Db& db, const RunSubject& subject, RunStatus status, const std::string& error,
                                 const std::string& audit_note, std::int64_t id_above) {
  validate_subject(subject);
  if (!is_terminal(status)) throw Error(ErrorKind::internal, "record_terminal_run needs a terminal status");
  Tx tx(db);
  std::int64_t now = now_ns();
  BeginOptions o;
  o.id_above = id_above;
  std::int64_t id = insert_run(db, subject, o, status, now, error);
  if (!audit_note.empty()) append_audit(db, id, to_string(subject.kind), std::nullopt, now, audit_note);
  tx.commit();
  return id;
}

// ---- finishing ----------------------------------------------------------

const RunLikeTable kRunsTable{"runs", {"success", "partial", "failed", "refused", "aborted"}};
const RunLikeTable kHookRunsTable{"hook_runs", {"success", "failed", "aborted"}};

void finish_record_in_tx(Db& db, const RunLikeTable& t, std::int64_t id, std::string_view status,
                         const Assignments& columns, const OnFinished& on_finished) {
  if (std::find(t.finish_statuses.begin(), t.finish_statuses.end(), status) == t.finish_statuses.end())
    throw Error(ErrorKind::usage, fmt::format("cannot finish a {} row as \"{}\": not a terminal status", t.table,
                                              escape_for_display(status)));
  auto current = db.query_rows(fmt::format("SELECT status FROM {} WHERE id = ?", t.table), {Value{id}});
  if (current.empty()) throw Error(ErrorKind::not_found, fmt::format("no {} row with id {}", t.table, id));
  auto cur = std::get<std::string>(current[0][0]);
  if (cur != "running")
    throw Error(ErrorKind::already_finished,
                fmt::format("{} row {} is already {}, refusing to overwrite", t.table, id, cur));
  std::int64_t now = now_ns();
  std::string sql = fmt::format("UPDATE {} SET status = ?, ended_at_ns = ?", t.table);
  std::vector<Value> args{Value{std::string(status)}, Value{now}};
  for (const auto& [col, val] : columns) {
    sql += fmt::format(", {} = ?", col);
    args.push_back(val);
  }
  sql += " WHERE id = ? AND status = 'running'";
  args.push_back(Value{id});
  db.execute(sql, args);
  if (db.changes() != 1) throw Error(ErrorKind::internal, fmt::format("finish of {} {} changed nothing", t.table, id));
  if (on_finished) on_finished(db, id, now, status);
}

void finish_record(Db& db, const RunLikeTable& t, std::int64_t id, std::string_view status,
                   const Assignments& columns, const OnFinished& on_finished) {
  Tx tx(db);
  finish_record_in_tx(db, t, id, status, columns, on_finished);
  tx.commit();
}

namespace {
void audit_finish(Db& db, std::int64_t id, std::int64_t at, std::string_view status) {
  append_audit(db, id, "finish", std::nullopt, at, std::string(status));
}
}  // namespace

void finish_run(Db& db, std::int64_t id, const RunOutcome& o) {
  Assignments cols{{"error", o.error.empty() ? Value{} : Value{o.error}},
                   {"file_count", Value{o.file_count}},
                   {"changed_count", o.changed_count ? Value{*o.changed_count} : Value{}}};
  finish_record(db, kRunsTable, id, to_string(o.status), cols, audit_finish);
}

std::string fail_run_manually(Db& db, std::int64_t id, const std::string& operator_name) {
  Tx tx(db);
  auto count = db.query_i64("SELECT file_count FROM runs WHERE id = ?", {Value{id}});
  if (!count) throw Error(ErrorKind::not_found, fmt::format("no run with id {}", id));
  std::string msg = fmt::format("marked failed manually at {}", rfc3339_utc(now_ns()));
  finish_record_in_tx(db, kRunsTable, id, "failed", {{"error", Value{msg}}, {"file_count", Value{*count}}},
                      [&](Db& d, std::int64_t rid, std::int64_t at, std::string_view st) {
                        audit_finish(d, rid, at, st);
                        append_audit(d, rid, "manual-fail",
                                     operator_name.empty() ? std::nullopt : std::optional(operator_name), at, msg);
                      });
  tx.commit();
  return msg;
}

// ---- reaping ------------------------------------------------------------

namespace {

std::vector<std::int64_t> dead_running(Db& db, std::string_view table) {
  std::vector<std::int64_t> dead;
  Stmt st(db, fmt::format("SELECT id, owner_pid, owner_boot_id, owner_start_ticks FROM {} WHERE status = 'running' "
                          "ORDER BY id",
                          table));
  while (st.step()) {
    ProcessIdentity owner{st.opt_i64(1).value_or(0), st.text(2), st.opt_i64(3).value_or(0)};
    if (owner_is_gone(owner)) dead.push_back(st.i64(0));
  }
  return dead;
}

}  // namespace

std::vector<std::int64_t> reap_dead_owners_in_tx(Db& db) {
  const std::string reason = "aborted: the owning process is gone";
  auto runs = dead_running(db, "runs");
  for (auto id : runs)
    finish_record_in_tx(db, kRunsTable, id, "aborted", {{"error", Value{reason}}},
                        [&](Db& d, std::int64_t rid, std::int64_t at, std::string_view) {
                          append_audit(d, rid, "abort", std::nullopt, at, reason);
                        });
  for (auto id : dead_running(db, "hook_runs"))
    finish_record_in_tx(db, kHookRunsTable, id, "aborted", {{"error", Value{reason}}});
  return runs;
}

std::vector<std::int64_t> reap_dead_owners(Db& db) {
  Tx tx(db);
  auto ids = reap_dead_owners_in_tx(db);
  tx.commit();
  return ids;
}

// ---- reading ------------------------------------------------------------

std::vector<RunRow> list_runs(Db& db, const RunFilter& f) {
  std::string sql = std::string("SELECT ") + kRunColumns + " WHERE 1=1";
  std::vector<Value> args;
  if (f.volume_id) {
    sql += " AND r.volume_id = ?";
    args.push_back(Value{*f.volume_id});
  }
  if (f.failed_only) sql += " AND r.status IN ('failed','refused','aborted','partial')";
  if (f.changes_only)
    sql += " AND NOT (r.status = 'success' AND COALESCE(r.changed_count, r.file_count) = 0)";
  sql += " ORDER BY r.id DESC LIMIT ?";
  args.push_back(Value{std::int64_t{f.limit > 0 ? f.limit : -1}});  // SQLite reads a negative LIMIT as none
  Stmt st(db, sql);
  st.bind_all(args);
  std::vector<RunRow> out;
  while (st.step()) out.push_back(read_run(st));
  return out;
}

std::optional<RunRow> get_run(Db& db, std::int64_t id) {
  Stmt st(db, std::string("SELECT ") + kRunColumns + " WHERE r.id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_run(st);
}

std::vector<AuditRow> audit_rows(Db& db, std::int64_t run_id) {
  Stmt st(db, "SELECT id, run_id, at_ns, transition, COALESCE(note,''), operator FROM runs_audit WHERE run_id = ? "
              "ORDER BY id");
  st.bind(1, run_id);
  std::vector<AuditRow> out;
  while (st.step()) out.push_back({st.i64(0), st.i64(1), st.i64(2), st.text(3), st.text(4), st.opt_text(5)});
  return out;
}

bool is_no_op(const RunRow& r) {
  return r.status == RunStatus::success && r.changed_count.value_or(r.file_count) == 0;
}

}  // namespace sq::store
