#include "store/reset.hpp"

#include <fmt/format.h>

#include <optional>

#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "store/runs.hpp"

namespace sq::store {

namespace {

ResetCounts count_recorded(Db& db, const std::string& destination) {
  auto count = [&](const char* table) {
    return db.query_i64(fmt::format("SELECT count(*) FROM {} WHERE destination = ?", table), {Value{destination}})
        .value_or(0);
  };
  return {count("remote_paths"), count("destination_run_ids"), count("destination_push_freshness"),
          count("remote_objects"), count("remote_packs")};
}

// A sync or verify in flight journals into the ledger and advances the
// vector when it finishes; clearing underneath it would strand its rows.
void refuse_while_in_use(Db& db, const std::string& destination) {
  reap_dead_owners_in_tx(db);
  auto rows = db.query_rows(
      "SELECT id, kind FROM runs WHERE status = 'running' AND destination = ? ORDER BY id LIMIT 1", {Value{destination}});
  if (rows.empty()) return;
  auto id = std::get<std::int64_t>(rows[0][0]);
  throw Error(ErrorKind::conflict,
              fmt::format("run {} ({}) is using destination \"{}\" — wait for it to finish, or `squirrel runs fail {}` "
                          "if it is stuck",
                          id, std::get<std::string>(rows[0][1]), destination, id));
}

// Volumeless: a reset spans every volume. Recorded as kind verify, the
// kind whose runs name a destination without a volume (verify ack too).
std::int64_t insert_running_reset_run(Db& db, const std::string& destination, std::int64_t now) {
  auto owner = self_identity();
  db.execute(
      "INSERT INTO runs(kind, volume_id, destination, started_at_ns, status, owner_pid, owner_boot_id, "
      "owner_start_ticks) VALUES ('verify', NULL, ?, ?, 'running', ?, ?, ?)",
      {Value{destination}, Value{now}, Value{owner.pid}, Value{owner.boot_id}, Value{owner.start_ticks}});
  return db.last_insert_id();
}

void delete_recorded(Db& db, const std::string& destination) {
  for (const char* table :
       {"remote_paths", "destination_run_ids", "destination_push_freshness", "remote_objects", "remote_packs"})
    db.execute(fmt::format("DELETE FROM {} WHERE destination = ?", table), {Value{destination}});
}

}  // namespace

ResetResult reset_destination(Db& db, const std::string& destination, bool dry_run, const std::string& operator_name) {
  if (destination.empty()) throw Error(ErrorKind::usage, "name the destination to reset");
  Tx tx(db);
  ResetResult result;
  if (!dry_run) refuse_while_in_use(db, destination);
  result.counts = count_recorded(db, destination);
  if (dry_run || result.counts.total() == 0) return result;  // the Tx rolls back: nothing written
  std::int64_t now = now_ns();
  result.run_id = insert_running_reset_run(db, destination, now);
  delete_recorded(db, destination);
  const auto& c = result.counts;
  std::optional<std::string> op = operator_name.empty() ? std::nullopt : std::optional(operator_name);
  append_audit(db, result.run_id, "reset-destination", op, now,
               fmt::format("destination=\"{}\" paths={} vector={} freshness={} objects={} packs={}", destination,
                           c.paths, c.vector, c.freshness, c.objects, c.packs));
  finish_record_in_tx(db, kRunsTable, result.run_id, "success",
                      {{"file_count", Value{c.total()}}, {"changed_count", Value{c.total()}}},
                      [](Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                        append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                      });
  tx.commit();
  return result;
}

}  // namespace sq::store
