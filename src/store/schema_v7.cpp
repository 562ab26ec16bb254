// Schema version 7: the lost copies of a destination. `status` asks on every
// run whether a verify found copies lost that no sync has written again,
// and verify asks before it refreshes evidence; with no index led by state
// both questions read the destination's whole ledger (500k SQLite steps at
// 100k files, a fifth of a status). Lost rows are few, so the partial index
// is small.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV7 = R"SQL(
CREATE INDEX idx_remote_paths_lost ON remote_paths(destination) WHERE state = 'lost';
)SQL";

}  // namespace sq::store
