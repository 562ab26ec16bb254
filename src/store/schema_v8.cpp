// Schema version 8: forgotten volumes. A volume that left the config can be
// dropped from the active list (`volumes forget`) while its rows, history
// and runs stay: the audit trail is never pruned. The run that forgot it is
// recorded; an index of the same name brings it back.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV8 = R"SQL(
ALTER TABLE volumes ADD COLUMN forgotten_run_id INTEGER REFERENCES runs(id);
)SQL";

}  // namespace sq::store
