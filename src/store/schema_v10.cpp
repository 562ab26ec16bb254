// Schema version 10: a content may be a member of several packs. Version 9
// keyed pack_members on the content alone ("packed at most once"), but a
// second packed destination, or the same one after `destination reset`,
// needs the content in a pack it holds: a pack is rebuilt from what that
// push has, so the same content can sit in two packs. Whether a destination
// holds a content stays a join through remote_packs.
#include "store/migrations.hpp"

namespace sq::store {

const char* const kSchemaV10 = R"SQL(
CREATE TABLE pack_members_v10 (
  pack_id INTEGER NOT NULL REFERENCES packs(id),
  content_id INTEGER NOT NULL REFERENCES contents(id),
  byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
  byte_length INTEGER NOT NULL CHECK (byte_length >= 0),
  PRIMARY KEY (pack_id, content_id)
) STRICT, WITHOUT ROWID;
INSERT INTO pack_members_v10(pack_id, content_id, byte_offset, byte_length)
  SELECT pack_id, content_id, byte_offset, byte_length FROM pack_members;
DROP TABLE pack_members;
ALTER TABLE pack_members_v10 RENAME TO pack_members;
CREATE INDEX idx_pack_members_content ON pack_members(content_id);
)SQL";

}  // namespace sq::store
