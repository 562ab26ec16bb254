// Schema version 3: the same tables, with CHECK constraints SQLite can test
// by comparison. A CHECK of the form `x IN (four or more values)` builds a
// temporary B-tree for every row written; files and remote_paths are written
// once or more per file by index and sync, which made that a tenth of a first
// index. The rebuild follows SQLite's twelve-step procedure: migrate() runs
// every step with foreign keys off and checks them before committing.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV3 = R"SQL(
CREATE TABLE files_v3 (
  folder_id INTEGER NOT NULL REFERENCES folders(id),
  name BLOB NOT NULL CHECK (length(name) > 0),
  content_id INTEGER NOT NULL REFERENCES contents(id),
  mtime_ns INTEGER NOT NULL,
  inode INTEGER,
  status TEXT NOT NULL
    CHECK (status = 'present' OR status = 'missing' OR status = 'superseded' OR status = 'offloaded'),
  first_seen_run_id INTEGER NOT NULL REFERENCES runs(id),
  last_seen_run_id INTEGER NOT NULL REFERENCES runs(id),
  status_changed_run_id INTEGER NOT NULL REFERENCES runs(id),
  indexed_at_ns INTEGER NOT NULL,
  PRIMARY KEY (folder_id, name, content_id)
) STRICT, WITHOUT ROWID;
INSERT INTO files_v3 SELECT folder_id, name, content_id, mtime_ns, inode, status, first_seen_run_id,
  last_seen_run_id, status_changed_run_id, indexed_at_ns FROM files;
DROP TABLE files;
ALTER TABLE files_v3 RENAME TO files;
CREATE INDEX idx_files_content ON files(content_id);
CREATE INDEX idx_files_missing ON files(folder_id, name) WHERE status = 'missing';
CREATE UNIQUE INDEX uniq_files_live_per_path ON files(folder_id, name) WHERE status != 'superseded';
CREATE TRIGGER files_content_immutable BEFORE UPDATE OF content_id, folder_id, name, first_seen_run_id ON files
BEGIN SELECT RAISE(ABORT, 'a file row never changes its path, content or first run'); END;
CREATE TRIGGER files_no_delete BEFORE DELETE ON files
BEGIN SELECT RAISE(ABORT, 'file observations are never deleted'); END;

CREATE TABLE remote_paths_v3 (
  id INTEGER PRIMARY KEY,
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  folder_id INTEGER NOT NULL,
  name BLOB NOT NULL,
  content_id INTEGER NOT NULL REFERENCES contents(id),
  written_run_id INTEGER NOT NULL REFERENCES runs(id),
  state TEXT NOT NULL CHECK (state = 'committing' OR state = 'live' OR state = 'displacing' OR
                             state = 'displaced' OR state = 'lost'),
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
INSERT INTO remote_paths_v3 SELECT id, destination, folder_id, name, content_id, written_run_id, state,
  displaced_run_id, size_bytes, mtime_ns, checksum_algo, checksum, verified_at_ns FROM remote_paths;
DROP TABLE remote_paths;
ALTER TABLE remote_paths_v3 RENAME TO remote_paths;
CREATE UNIQUE INDEX uniq_remote_paths_live ON remote_paths(destination, folder_id, name)
  WHERE state IN ('committing','live');
CREATE INDEX idx_remote_paths_unsettled ON remote_paths(destination) WHERE state IN ('committing','displacing');
CREATE INDEX idx_remote_paths_dest_verified ON remote_paths(destination, verified_at_ns);
)SQL";

}  // namespace sq::store
