// Schema version 2: durability evidence and the native mirror ledger.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV2 = R"SQL(
CREATE TABLE destination_run_ids (
  volume_id INTEGER NOT NULL REFERENCES volumes(id),
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  origin_node_id INTEGER NOT NULL REFERENCES nodes(id),
  origin_run_id INTEGER NOT NULL CHECK (origin_run_id >= 0),
  updated_at_ns INTEGER NOT NULL,
  verify_method TEXT,
  source_node_id INTEGER REFERENCES nodes(id),
  verified_at_ns INTEGER,
  PRIMARY KEY (volume_id, destination, origin_node_id)
) STRICT;

CREATE TABLE destination_run_ids_history (
  id INTEGER PRIMARY KEY,
  volume_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  origin_node_id INTEGER NOT NULL,
  origin_run_id INTEGER NOT NULL,
  at_ns INTEGER NOT NULL,
  verify_method TEXT,
  source_node_id INTEGER,
  verified INTEGER NOT NULL CHECK (verified IN (0,1)),
  rewind INTEGER NOT NULL CHECK (rewind IN (0,1))
) STRICT;
CREATE INDEX idx_destination_run_ids_history ON destination_run_ids_history(volume_id, destination);
CREATE TRIGGER destination_run_ids_history_no_update BEFORE UPDATE ON destination_run_ids_history
BEGIN SELECT RAISE(ABORT, 'the advance log is insert-only'); END;
CREATE TRIGGER destination_run_ids_history_no_delete BEFORE DELETE ON destination_run_ids_history
BEGIN SELECT RAISE(ABORT, 'the advance log is insert-only'); END;

CREATE TABLE destination_push_freshness (
  volume_id INTEGER NOT NULL REFERENCES volumes(id),
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  origin_node_id INTEGER NOT NULL REFERENCES nodes(id),
  origin_run_id INTEGER NOT NULL,
  updated_at_ns INTEGER NOT NULL,
  PRIMARY KEY (volume_id, destination, origin_node_id)
) STRICT;

CREATE TABLE remote_paths (
  id INTEGER PRIMARY KEY,
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  folder_id INTEGER NOT NULL,
  name BLOB NOT NULL,
  content_id INTEGER NOT NULL REFERENCES contents(id),
  written_run_id INTEGER NOT NULL REFERENCES runs(id),
  state TEXT NOT NULL CHECK (state IN ('committing','live','displacing','displaced','lost')),
  displaced_run_id INTEGER REFERENCES runs(id),
  size_bytes INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  checksum_algo TEXT,
  checksum TEXT,
  verified_at_ns INTEGER,
  FOREIGN KEY (folder_id, name, content_id) REFERENCES files(folder_id, name, content_id),
  CHECK ((checksum_algo IS NULL) = (checksum IS NULL)),
  CHECK (state NOT IN ('committing','live') OR displaced_run_id IS NULL),
  CHECK (state NOT IN ('displacing','displaced') OR displaced_run_id IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX uniq_remote_paths_live ON remote_paths(destination, folder_id, name)
  WHERE state IN ('committing','live');
CREATE INDEX idx_remote_paths_unsettled ON remote_paths(destination) WHERE state IN ('committing','displacing');
CREATE INDEX idx_remote_paths_dest_verified ON remote_paths(destination, verified_at_ns);

CREATE TABLE destination_alarms (
  destination TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  raised_run_id INTEGER NOT NULL REFERENCES runs(id),
  raised_at_ns INTEGER NOT NULL
) STRICT;
)SQL";

}  // namespace sq::store
