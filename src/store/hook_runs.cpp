#include "store/hook_runs.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "store/runs.hpp"

namespace sq::store {

std::int64_t begin_hook_run(Db& db, const HookRunSpec& s) {
  if (s.trigger != "change" && s.trigger != "interval")
    throw Error(ErrorKind::usage, fmt::format("unknown hook trigger \"{}\"", escape_for_display(s.trigger)));
  if ((s.trigger == "change") != s.triggering_run.has_value())
    throw Error(ErrorKind::usage, "a change hook needs its triggering run and an interval hook must not have one");
  Tx tx(db);
  reap_dead_owners_in_tx(db);
  db.execute(
      "INSERT INTO hook_runs(volume_id, trigger, triggering_run_id, changed, started_at_ns, status, owner_pid, "
      "owner_boot_id, owner_start_ticks) VALUES (?,?,?,?,?, 'running', ?,?,?)",
      {Value{s.volume_id}, Value{s.trigger}, s.triggering_run ? Value{*s.triggering_run} : Value{},
       Value{std::int64_t{s.changed ? 1 : 0}}, Value{now_ns()}, Value{s.owner.pid}, Value{s.owner.boot_id},
       Value{s.owner.start_ticks}});
  auto id = db.last_insert_id();
  tx.commit();
  return id;
}

void finish_hook_run(Db& db, std::int64_t id, const std::string& status, std::optional<std::int64_t> exit_code,
                     const std::string& error) {
  if (status != "success" && status != "failed")
    throw Error(ErrorKind::usage, fmt::format("a hook run finishes as success or failed, not \"{}\"",
                                              escape_for_display(status)));
  finish_record(db, kHookRunsTable, id, status,
                {{"exit_code", exit_code ? Value{*exit_code} : Value{}},
                 {"error", error.empty() ? Value{} : Value{error}}});
}

std::vector<HookRunRow> list_hook_runs(Db& db, std::optional<std::int64_t> volume_id, int limit) {
  std::string sql =
      "SELECT h.id, h.volume_id, v.name, h.trigger, h.status, COALESCE(h.error,''), h.triggering_run_id, "
      "h.ended_at_ns, h.exit_code, h.changed, h.started_at_ns FROM hook_runs h JOIN volumes v ON v.id = h.volume_id";
  std::vector<Value> args;
  if (volume_id) {
    sql += " WHERE h.volume_id = ?";
    args.push_back(Value{*volume_id});
  }
  sql += " ORDER BY h.id DESC LIMIT ?";
  args.push_back(Value{std::int64_t{limit > 0 ? limit : -1}});  // SQLite reads a negative LIMIT as none
  Stmt st(db, sql);
  st.bind_all(args);
  std::vector<HookRunRow> out;
  while (st.step())
    out.push_back({st.i64(0), st.i64(1), st.text(2), st.text(3), st.text(4), st.text(5), st.opt_i64(6),
                   st.opt_i64(7), st.opt_i64(8), st.i64(9) != 0, st.i64(10)});
  return out;
}

}  // namespace sq::store
