// Schema version 9: the ledgers of the content-addressed and packed layouts
// (spec data-model.md §3.14–3.15). An object is recorded once per
// (content, destination), only after its bytes were confirmed there; a
// content is packed at most once (pack_members keys on it) and each
// destination that holds a pack has its own remote_packs row. Checksums are
// the destination's own, paired with their algorithm like remote_paths'.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV9 = R"SQL(
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

CREATE TABLE packs (
  id INTEGER PRIMARY KEY,
  pack_key BLOB NOT NULL UNIQUE CHECK (length(pack_key) = 32),
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  member_count INTEGER NOT NULL CHECK (member_count >= 0),
  created_run_id INTEGER NOT NULL REFERENCES runs(id)
) STRICT;

CREATE TABLE pack_members (
  content_id INTEGER NOT NULL PRIMARY KEY REFERENCES contents(id),
  pack_id INTEGER NOT NULL REFERENCES packs(id),
  byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
  byte_length INTEGER NOT NULL CHECK (byte_length >= 0)
) STRICT;
CREATE INDEX idx_pack_members_pack ON pack_members(pack_id);

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
)SQL";

}  // namespace sq::store
