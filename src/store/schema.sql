CREATE TABLE contents (
  id INTEGER PRIMARY KEY,
  blake3 BLOB NOT NULL UNIQUE CHECK (length(blake3) = 32),
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  origin_node_id INTEGER REFERENCES nodes(id),
  origin_run_id INTEGER
) STRICT;

CREATE TABLE database_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL CHECK (length(id) = 32)
) STRICT;

CREATE TABLE destination_alarms (
  destination TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  raised_run_id INTEGER NOT NULL REFERENCES runs(id),
  raised_at_ns INTEGER NOT NULL
) STRICT;

CREATE TABLE destination_push_freshness (
  volume_id INTEGER NOT NULL REFERENCES volumes(id),
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  origin_node_id INTEGER NOT NULL REFERENCES nodes(id),
  origin_run_id INTEGER NOT NULL,
  updated_at_ns INTEGER NOT NULL,
  PRIMARY KEY (volume_id, destination, origin_node_id)
) STRICT;

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

CREATE TABLE "files" (
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

CREATE TABLE folders (
  id INTEGER PRIMARY KEY,
  volume_id INTEGER NOT NULL REFERENCES volumes(id),
  parent_id INTEGER REFERENCES folders(id),
  path BLOB NOT NULL,
  shallow_blake3 BLOB CHECK (shallow_blake3 IS NULL OR length(shallow_blake3) = 32),
  deep_blake3 BLOB CHECK (deep_blake3 IS NULL OR length(deep_blake3) = 32),
  last_changed_run_id INTEGER REFERENCES runs(id),
  file_count INTEGER NOT NULL DEFAULT 0 CHECK (file_count >= 0),
  cumulative_size INTEGER NOT NULL DEFAULT 0 CHECK (cumulative_size >= 0),
  UNIQUE (volume_id, path),
  CHECK ((parent_id IS NULL) = (path = X''))
) STRICT;

CREATE TABLE hook_runs (
  id INTEGER PRIMARY KEY,
  volume_id INTEGER NOT NULL REFERENCES volumes(id),
  trigger TEXT NOT NULL CHECK (trigger IN ('change','interval')),
  triggering_run_id INTEGER REFERENCES runs(id),
  changed INTEGER NOT NULL CHECK (changed IN (0,1)),
  started_at_ns INTEGER NOT NULL,
  ended_at_ns INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running','success','failed','aborted')),
  exit_code INTEGER,
  error TEXT,
  owner_pid INTEGER,
  owner_boot_id TEXT,
  owner_start_ticks INTEGER,
  CHECK ((trigger = 'change' AND triggering_run_id IS NOT NULL)
      OR (trigger = 'interval' AND triggering_run_id IS NULL)),
  CHECK ((status = 'running') = (ended_at_ns IS NULL))
) STRICT;

CREATE TABLE nodes (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
  endpoint TEXT,
  public_key_fingerprint TEXT
) STRICT;

CREATE TABLE offload_intents (
  folder_id INTEGER NOT NULL,
  name BLOB NOT NULL,
  content_id INTEGER NOT NULL,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  PRIMARY KEY (folder_id, name, content_id),
  FOREIGN KEY (folder_id, name, content_id) REFERENCES files(folder_id, name, content_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE "pack_members" (
  pack_id INTEGER NOT NULL REFERENCES packs(id),
  content_id INTEGER NOT NULL REFERENCES contents(id),
  byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
  byte_length INTEGER NOT NULL CHECK (byte_length >= 0),
  PRIMARY KEY (pack_id, content_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE packs (
  id INTEGER PRIMARY KEY,
  pack_key BLOB NOT NULL UNIQUE CHECK (length(pack_key) = 32),
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  member_count INTEGER NOT NULL CHECK (member_count >= 0),
  created_run_id INTEGER NOT NULL REFERENCES runs(id)
) STRICT;

CREATE TABLE remote_objects (
  content_id INTEGER NOT NULL REFERENCES contents(id),
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  uploaded_run_id INTEGER NOT NULL REFERENCES runs(id),
  checksum_algo TEXT,
  checksum TEXT,
  verified_at_ns INTEGER,
  PRIMARY KEY (content_id, destination),
  CHECK ((checksum_algo IS NULL) = (checksum IS NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE remote_packs (
  pack_id INTEGER NOT NULL REFERENCES packs(id),
  destination TEXT NOT NULL CHECK (length(destination) > 0),
  uploaded_run_id INTEGER NOT NULL REFERENCES runs(id),
  checksum_algo TEXT,
  checksum TEXT,
  verified_at_ns INTEGER,
  PRIMARY KEY (pack_id, destination),
  CHECK ((checksum_algo IS NULL) = (checksum IS NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE "remote_paths" (
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

CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('index','audit','sync','restore','offload','verify')),
  volume_id INTEGER REFERENCES volumes(id),
  destination TEXT,
  started_at_ns INTEGER NOT NULL,
  ended_at_ns INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running','success','partial','failed','refused','aborted')),
  error TEXT,
  file_count INTEGER NOT NULL DEFAULT 0 CHECK (file_count >= 0),
  changed_count INTEGER CHECK (changed_count IS NULL OR changed_count >= 0),
  shallow INTEGER CHECK (shallow IS NULL OR shallow IN (0,1)),
  peer_node_id INTEGER REFERENCES nodes(id),
  correlated_run_id INTEGER,
  owner_pid INTEGER,
  owner_boot_id TEXT,
  owner_start_ticks INTEGER,
  CHECK ((kind IN ('index','audit','offload') AND destination IS NULL)
      OR (kind IN ('sync','restore','verify') AND destination IS NOT NULL AND destination != '')),
  CHECK ((status = 'running') = (ended_at_ns IS NULL))
) STRICT;

CREATE TABLE runs_audit (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  transition TEXT NOT NULL,
  operator TEXT,
  at_ns INTEGER NOT NULL,
  note TEXT
) STRICT;

CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY) STRICT;

CREATE TABLE volumes (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  path TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL
, forgotten_run_id INTEGER REFERENCES runs(id)) STRICT;

CREATE INDEX idx_contents_origin_node ON contents(origin_node_id) WHERE origin_node_id IS NOT NULL;

CREATE INDEX idx_destination_run_ids_history ON destination_run_ids_history(volume_id, destination);

CREATE INDEX idx_files_content ON files(content_id);

CREATE INDEX idx_files_missing ON files(folder_id, name) WHERE status = 'missing';

CREATE INDEX idx_folders_parent ON folders(parent_id);

CREATE INDEX idx_hook_runs_volume_trigger ON hook_runs(volume_id, trigger, started_at_ns);

CREATE INDEX idx_pack_members_content ON pack_members(content_id);

CREATE INDEX idx_remote_paths_dest_content ON remote_paths(destination, content_id)
  WHERE state IN ('live','displaced');

CREATE INDEX idx_remote_paths_dest_path ON remote_paths(destination, folder_id, name);

CREATE INDEX idx_remote_paths_dest_verified ON remote_paths(destination, verified_at_ns);

CREATE INDEX idx_remote_paths_live_unverified ON remote_paths(destination)
  WHERE state = 'live' AND checksum IS NULL;

CREATE INDEX idx_remote_paths_lost ON remote_paths(destination) WHERE state = 'lost';

CREATE INDEX idx_remote_paths_unsettled ON remote_paths(destination) WHERE state IN ('committing','displacing');

CREATE INDEX idx_runs_audit_run ON runs_audit(run_id);

CREATE INDEX idx_runs_destination ON runs(destination) WHERE destination IS NOT NULL;

CREATE INDEX idx_runs_running ON runs(volume_id) WHERE status = 'running';

CREATE INDEX idx_runs_volume_started ON runs(volume_id, started_at_ns);

CREATE UNIQUE INDEX uniq_files_live_per_path ON files(folder_id, name) WHERE status != 'superseded';

CREATE UNIQUE INDEX uniq_nodes_self ON nodes((endpoint IS NULL)) WHERE endpoint IS NULL;

CREATE UNIQUE INDEX uniq_remote_paths_live ON remote_paths(destination, folder_id, name)
  WHERE state IN ('committing','live');

CREATE TRIGGER contents_no_delete BEFORE DELETE ON contents
BEGIN SELECT RAISE(ABORT, 'contents are append-only'); END;

CREATE TRIGGER contents_no_update BEFORE UPDATE ON contents
BEGIN SELECT RAISE(ABORT, 'contents are append-only'); END;

CREATE TRIGGER destination_run_ids_history_no_delete BEFORE DELETE ON destination_run_ids_history
BEGIN SELECT RAISE(ABORT, 'the advance log is insert-only'); END;

CREATE TRIGGER destination_run_ids_history_no_update BEFORE UPDATE ON destination_run_ids_history
BEGIN SELECT RAISE(ABORT, 'the advance log is insert-only'); END;

CREATE TRIGGER files_content_immutable BEFORE UPDATE OF content_id, folder_id, name, first_seen_run_id ON files
BEGIN SELECT RAISE(ABORT, 'a file row never changes its path, content or first run'); END;

CREATE TRIGGER files_no_delete BEFORE DELETE ON files
BEGIN SELECT RAISE(ABORT, 'file observations are never deleted'); END;

CREATE TRIGGER runs_audit_no_delete BEFORE DELETE ON runs_audit
BEGIN SELECT RAISE(ABORT, 'runs_audit is insert-only'); END;

CREATE TRIGGER runs_audit_no_update BEFORE UPDATE ON runs_audit
BEGIN SELECT RAISE(ABORT, 'runs_audit is insert-only'); END;

CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are never deleted'); END;

