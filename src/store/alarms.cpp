#include "store/alarms.hpp"

#include <fmt/format.h>

#include "core/text.hpp"
#include "store/runs.hpp"

namespace sq::store {

bool raise_alarm_in_tx(Db& db, const std::string& destination, const std::string& kind, const std::string& detail,
                       std::int64_t run_id) {
  std::int64_t now = now_ns();
  db.execute(
      "INSERT INTO destination_alarms(destination, kind, detail, raised_run_id, raised_at_ns) VALUES (?,?,?,?,?) "
      "ON CONFLICT(destination) DO NOTHING",
      {Value{destination}, Value{kind}, Value{detail}, Value{run_id}, Value{now}});
  if (db.changes() == 0) return false;
  append_audit(db, run_id, "alarm-raise", std::nullopt, now, fmt::format("destination={} {}", destination, detail));
  return true;
}

bool clear_alarm_in_tx(Db& db, const std::string& destination, std::int64_t run_id,
                       const std::optional<std::string>& operator_name) {
  db.execute("DELETE FROM destination_alarms WHERE destination = ?", {Value{destination}});
  if (db.changes() == 0) return false;
  append_audit(db, run_id, "alarm-clear", operator_name, now_ns(), fmt::format("destination={}", destination));
  return true;
}

std::vector<Alarm> list_alarms(Db& db) {
  Stmt st(db, "SELECT destination, kind, detail, raised_run_id, raised_at_ns FROM destination_alarms ORDER BY destination");
  std::vector<Alarm> out;
  while (st.step()) out.push_back({st.text(0), st.text(1), st.text(2), st.i64(3), st.i64(4)});
  return out;
}

}  // namespace sq::store
