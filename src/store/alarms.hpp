#pragma once
// Standing destination alarms: raised by a verify finding, they stay red
// until a clean pass or a person's `verify ack`. Raise and clear are audited.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace sq::store {

struct Alarm {
  std::string destination, kind, detail;
  std::int64_t raised_run_id = 0, raised_at_ns = 0;
};

// Idempotent: an existing alarm keeps its first run and time. Returns true
// when this call raised it. Must run inside a write transaction.
bool raise_alarm_in_tx(Db& db, const std::string& destination, const std::string& kind, const std::string& detail,
                       std::int64_t run_id);
// Returns true when an alarm was cleared. Must run inside a write transaction.
bool clear_alarm_in_tx(Db& db, const std::string& destination, std::int64_t run_id,
                       const std::optional<std::string>& operator_name);
std::vector<Alarm> list_alarms(Db& db);

}  // namespace sq::store
