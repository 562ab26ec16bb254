#pragma once
// `destination reset`: forget what the index recorded about one destination
// (its mirror ledger, its object and pack records, its evidence vector and
// its push freshness, for every volume) after the destination was wiped, replaced or re-created. It is an
// audited event: one volumeless run, the counts and the operator in
// runs_audit. Runs, runs_audit, the evidence advance log, alarms, contents
// and files are kept, and no byte at the destination is touched.
#include <cstdint>
#include <string>

#include "store/db.hpp"

namespace sq::store {

struct ResetCounts {
  std::int64_t paths = 0;      // remote_paths rows (any state)
  std::int64_t vector = 0;     // destination_run_ids components
  std::int64_t freshness = 0;  // destination_push_freshness rows
  std::int64_t objects = 0;    // remote_objects rows
  std::int64_t packs = 0;      // remote_packs rows (the packs themselves are the index's, kept)
  std::int64_t total() const { return paths + vector + freshness + objects + packs; }
};

struct ResetResult {
  ResetCounts counts;
  std::int64_t run_id = 0;  // the audit run; 0 for a dry run or when nothing was recorded
};

// One transaction, all or nothing. A dry run only counts. Nothing recorded
// mints no run. Refuses (ErrorKind::conflict) while a run that uses the
// destination is running, since a push in flight journals into the ledger.
ResetResult reset_destination(Db& db, const std::string& destination, bool dry_run,
                              const std::string& operator_name = "");

}  // namespace sq::store
