// Schema version 4: an index of the live mirror copies that carry no
// read-back checksum. A push may claim fingerprint-verified only when there
// are none; without the index that question scanned the whole ledger of the
// destination, a third of an unchanged re-sync.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV4 = R"SQL(
CREATE INDEX idx_remote_paths_live_unverified ON remote_paths(destination)
  WHERE state = 'live' AND checksum IS NULL;
)SQL";

}  // namespace sq::store
