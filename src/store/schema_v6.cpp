// Schema version 6: the mirror ledger by path. Restore, and every other
// statement that asks for the copy of one file at a destination, searches
// by (destination, folder, name); without this index SQLite could only
// narrow by destination and walked every copy there for every file, so a
// restore of 10k files took 24 s and of 60k files did not finish.
// uniq_remote_paths_live covers live rows only; this one covers every state
// (displaced copies in history, lost ones).
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV6 = R"SQL(
CREATE INDEX idx_remote_paths_dest_path ON remote_paths(destination, folder_id, name);
)SQL";

}  // namespace sq::store
