// Schema version 5: the offload intent journal, and the ledger by content.
// An offload records which rows it is about to unlink, in a commit of its
// own, before the first unlink; the flips to `offloaded` and the removal of
// the intents commit together after. A kill in between leaves intents that
// the next gated run on the volume settles from what is on disk, so no
// deleted file is ever left `present` (and later called `missing`).
// The database identity goes into every volume marker this database
// writes, so a second index database pointed at the same tree is refused
// instead of calling the first one's offloaded files missing.
// The content index serves offload's per-file copy check and restore's
// search for any copy of a content: both ask by (destination, content).
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV5 = R"SQL(
CREATE TABLE offload_intents (
  folder_id INTEGER NOT NULL,
  name BLOB NOT NULL,
  content_id INTEGER NOT NULL,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  PRIMARY KEY (folder_id, name, content_id),
  FOREIGN KEY (folder_id, name, content_id) REFERENCES files(folder_id, name, content_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE database_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL CHECK (length(id) = 32)
) STRICT;
INSERT INTO database_identity(singleton, id) VALUES (1, lower(hex(randomblob(16))));
CREATE INDEX idx_remote_paths_dest_content ON remote_paths(destination, content_id)
  WHERE state IN ('live','displaced');
)SQL";

}  // namespace sq::store
