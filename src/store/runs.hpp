#pragma once
// Runs: the audit spine. One declaration says which run kinds conflict
// (runs_conflict), one atomic begin serves every kind (begin_run), and one
// first-write-wins finish serves every run-like table (finish_record).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/process.hpp"
#include "store/db.hpp"

namespace sq::store {

enum class RunKind { index, audit, sync, restore, offload, verify };
enum class RunStatus { running, success, partial, failed, refused, aborted };

inline constexpr RunKind kAllRunKinds[] = {RunKind::index,   RunKind::audit,   RunKind::sync,
                                           RunKind::restore, RunKind::offload, RunKind::verify};

std::string_view to_string(RunKind k);
std::string_view to_string(RunStatus s);
std::optional<RunKind> parse_run_kind(std::string_view s);
std::optional<RunStatus> parse_run_status(std::string_view s);
bool is_terminal(RunStatus s);
bool kind_has_destination(RunKind k);

// What a run is about. Volumeless runs (volume_id empty) never conflict.
struct RunSubject {
  RunKind kind = RunKind::index;
  std::optional<std::int64_t> volume_id;
  std::string destination;  // required for sync, restore and verify; empty otherwise
};

// THE conflict relation. Symmetric by construction: it is declared as a
// set of unordered kind pairs.
bool runs_conflict(const RunSubject& a, const RunSubject& b);

struct RunRow {
  std::int64_t id = 0;
  RunKind kind = RunKind::index;
  std::optional<std::int64_t> volume_id;
  std::string volume_name;  // empty when volumeless
  std::string destination;
  std::int64_t started_at_ns = 0;
  std::optional<std::int64_t> ended_at_ns;
  RunStatus status = RunStatus::running;
  std::string error;
  std::int64_t file_count = 0;
  std::optional<std::int64_t> changed_count;
  std::optional<bool> shallow;
};

struct BeginOptions {
  std::optional<bool> shallow;
  std::optional<std::int64_t> peer_node_id;
  std::optional<std::int64_t> correlated_run_id;
  ProcessIdentity owner = self_identity();
  // The run gets an id above this one: a database that does not know a
  // destination's runs (recovered, or new on a fresh machine) must never
  // reuse a run id the destination already names (receipts, history).
  std::int64_t id_above = 0;
};

struct BeginResult {
  std::int64_t run_id = 0;             // the new running run, 0 when blocked
  std::optional<RunRow> blocker;       // the running run that holds the gate
  std::int64_t refused_run_id = 0;     // the refused row recorded for a blocked begin
  bool began() const { return run_id != 0; }
};

// Reaps dead owners, then checks every running run of the same volume
// against runs_conflict and inserts, all in one BEGIN IMMEDIATE. A blocked
// begin records a `refused` run naming the blocker so the refusal is in
// the audit trail.
BeginResult begin_run(Db& db, const RunSubject& subject, const BeginOptions& opts = {});

// What a blocked begin tells the user: the blocker, and what to do.
std::string blocked_message(const RunRow& blocker);
// begin_run for the commands: the new run's id, or Error(conflict) with
// blocked_message (the refused row is recorded either way).
std::int64_t begin_run_or_throw(Db& db, const RunSubject& subject, const BeginOptions& opts = {});

// Inserts a run that is terminal from birth (a preflight refusal that
// happened before any gate, or an instantaneous audit event).
// `id_above` as in BeginOptions.
std::int64_t record_terminal_run(Db& db, const RunSubject& subject, RunStatus status, const std::string& error,
                                 const std::string& audit_note = "", std::int64_t id_above = 0);

// ---- finishing ----------------------------------------------------------

struct RunLikeTable {
  std::string_view table;
  std::vector<std::string_view> finish_statuses;  // allowed target statuses
};
extern const RunLikeTable kRunsTable;
extern const RunLikeTable kHookRunsTable;

using Assignments = std::vector<std::pair<std::string, Value>>;
using OnFinished = std::function<void(Db&, std::int64_t id, std::int64_t ended_at_ns, std::string_view status)>;

// First terminal write wins. Unknown id -> not_found; non-terminal or
// disallowed target -> usage; row already terminal -> already_finished and
// the row is left byte-identical. `on_finished` runs in the same
// transaction (runs use it to append their audit row).
void finish_record_in_tx(Db& db, const RunLikeTable& t, std::int64_t id, std::string_view status,
                         const Assignments& columns, const OnFinished& on_finished = {});
void finish_record(Db& db, const RunLikeTable& t, std::int64_t id, std::string_view status,
                   const Assignments& columns, const OnFinished& on_finished = {});

struct RunOutcome {
  RunStatus status = RunStatus::success;
  std::string error;
  std::int64_t file_count = 0;
  std::optional<std::int64_t> changed_count;
};
// Finishes a run and appends exactly one `finish` audit row in the same
// transaction (at_ns == ended_at_ns, note == status).
void finish_run(Db& db, std::int64_t id, const RunOutcome& outcome);

// `squirrel runs fail`: running rows only; keeps file_count; adds a
// `manual-fail` audit row naming the operator. Returns the message stored.
std::string fail_run_manually(Db& db, std::int64_t id, const std::string& operator_name);

// Marks `running` rows (runs and hook runs) whose owner is positively gone
// as `aborted`, one `abort` audit row per run. Must be called inside a
// write transaction. Returns the reaped run ids.
std::vector<std::int64_t> reap_dead_owners_in_tx(Db& db);
std::vector<std::int64_t> reap_dead_owners(Db& db);

void append_audit(Db& db, std::int64_t run_id, std::string_view transition, const std::optional<std::string>& op,
                  std::int64_t at_ns, const std::string& note);

// ---- reading ------------------------------------------------------------

struct RunFilter {
  std::optional<std::int64_t> volume_id;
  int limit = 20;  // 0: every run, as the reference's --limit 0
  bool failed_only = false;   // failed, refused, aborted, partial
  bool changes_only = false;  // hide no-ops
};
std::vector<RunRow> list_runs(Db& db, const RunFilter& f);
std::optional<RunRow> get_run(Db& db, std::int64_t id);

struct AuditRow {
  std::int64_t id = 0, run_id = 0, at_ns = 0;
  std::string transition, note;
  std::optional<std::string> op;
};
std::vector<AuditRow> audit_rows(Db& db, std::int64_t run_id);

// A success that changed nothing.
bool is_no_op(const RunRow& r);

}  // namespace sq::store
