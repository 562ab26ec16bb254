#include "store/artifacts.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/text.hpp"
#include "store/evidence.hpp"

namespace sq::store {

void record_object(Db& db, std::int64_t content_id, const std::string& destination, std::int64_t run_id,
                   const std::optional<Measured>& m) {
  db.execute(
      "INSERT INTO remote_objects(content_id, destination, uploaded_run_id, checksum_algo, checksum, verified_at_ns) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {Value{content_id}, Value{destination}, Value{run_id}, m ? Value{m->algo} : Value{},
       m ? Value{m->checksum} : Value{}, m ? Value{m->at_ns} : Value{}});
}

bool content_at_destination(Db& db, std::int64_t content_id, const std::string& destination) {
  return db
             .query_i64("SELECT EXISTS (SELECT 1 FROM remote_objects WHERE content_id = ?1 AND destination = ?2) OR "
                        "EXISTS (SELECT 1 FROM pack_members m JOIN remote_packs r ON r.pack_id = m.pack_id WHERE "
                        "m.content_id = ?1 AND r.destination = ?2)",
                        {Value{content_id}, Value{destination}})
             .value_or(0) != 0;
}

bool object_recorded(Db& db, std::int64_t content_id, const std::string& destination) {
  return db.query_i64("SELECT EXISTS (SELECT 1 FROM remote_objects WHERE content_id = ? AND destination = ?)",
                      {Value{content_id}, Value{destination}})
             .value_or(0) != 0;
}

std::int64_t record_pack_in_tx(Db& db, const PackRecord& pack, const std::string& destination, std::int64_t run_id,
                               const std::optional<Measured>& m) {
  std::string_view key(reinterpret_cast<const char*>(pack.key.data()), pack.key.size());
  Stmt ins(db, "INSERT INTO packs(pack_key, size_bytes, member_count, created_run_id) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(pack_key) DO NOTHING");
  ins.bind_bytes(1, key).bind(2, pack.size).bind(3, static_cast<std::int64_t>(pack.members.size())).bind(4, run_id);
  ins.step();
  Stmt id_of(db, "SELECT id FROM packs WHERE pack_key = ?");
  id_of.bind_bytes(1, key);
  if (!id_of.step()) throw Error(ErrorKind::corrupt, "a pack row vanished while it was recorded");
  std::int64_t id = id_of.i64(0);
  Stmt member(db, "INSERT INTO pack_members(pack_id, content_id, byte_offset, byte_length) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT DO NOTHING");
  // In content order, both of pack_members' b-trees grow at their end.
  std::vector<const PackRecord::Member*> by_content;
  for (const auto& mb : pack.members) by_content.push_back(&mb);
  std::sort(by_content.begin(), by_content.end(),
            [](const PackRecord::Member* a, const PackRecord::Member* b) { return a->content_id < b->content_id; });
  for (const auto* mb : by_content) {
    member.bind(1, id).bind(2, mb->content_id).bind(3, mb->offset).bind(4, mb->length);
    member.step();
    member.reset();
  }
  db.execute("INSERT INTO remote_packs(pack_id, destination, uploaded_run_id, checksum_algo, checksum, verified_at_ns) "
             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
             {Value{id}, Value{destination}, Value{run_id}, m ? Value{m->algo} : Value{}, m ? Value{m->checksum} : Value{},
              m ? Value{m->at_ns} : Value{}});
  return id;
}

void stamp_object_in_tx(Db& db, std::int64_t content_id, const std::string& destination, const Measured& m) {
  Stmt st(db, fmt::format("UPDATE remote_objects SET {} WHERE content_id = ?3 AND destination = ?5 AND {}", kStampSet,
                          kStampAllowed));
  st.bind(1, m.checksum).bind(2, m.at_ns).bind(3, content_id).bind(4, m.algo).bind(5, destination);
  st.step();
  if (db.changes() != 1)
    throw Error(ErrorKind::corrupt, fmt::format("the object record of content {} cannot take checksum {}", content_id,
                                                m.checksum));
}

void stamp_pack_in_tx(Db& db, const Digest& key, const std::string& destination, const Measured& m) {
  Stmt st(db, fmt::format("UPDATE remote_packs SET {} WHERE destination = ?5 AND pack_id = (SELECT id FROM packs "
                          "WHERE pack_key = ?3) AND {}",
                          kStampSet, kStampAllowed));
  st.bind(1, m.checksum).bind(2, m.at_ns).bind(4, m.algo).bind(5, destination);
  st.bind_bytes(3, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  st.step();
  if (db.changes() != 1)
    throw Error(ErrorKind::corrupt, fmt::format("the record of pack {} cannot take checksum {}", to_hex(key),
                                                m.checksum));
}

std::optional<PackPlace> pack_place(Db& db, std::int64_t content_id, const std::string& destination) {
  Stmt st(db, "SELECT p.pack_key, m.byte_offset, m.byte_length, p.size_bytes FROM pack_members m JOIN remote_packs r ON r.pack_id = "
              "m.pack_id JOIN packs p ON p.id = m.pack_id WHERE m.content_id = ? AND r.destination = ? LIMIT 1");
  st.bind(1, content_id).bind(2, destination);
  if (!st.step()) return std::nullopt;
  return PackPlace{st.digest(0), st.i64(1), st.i64(2), st.i64(3)};
}

void forget_remote_pack(Db& db, const Digest& key, const std::string& destination) {
  Stmt st(db, "DELETE FROM remote_packs WHERE destination = ? AND pack_id = (SELECT id FROM packs WHERE pack_key = ?)");
  st.bind(1, destination).bind_bytes(2, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  st.step();
}

void forget_object(Db& db, std::int64_t content_id, const std::string& destination) {
  db.execute("DELETE FROM remote_objects WHERE content_id = ? AND destination = ?",
             {Value{content_id}, Value{destination}});
}

bool volume_contents_held(Db& db, std::int64_t volume_id, const std::string& destination, bool fingerprinted) {
  const char* verified = fingerprinted ? "AND checksum IS NOT NULL AND verified_at_ns IS NOT NULL" : "";
  auto sql = fmt::format(
      "SELECT EXISTS (SELECT 1 FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.volume_id = ?1 AND "
      "f.status = 'present' AND {0} AND NOT EXISTS (SELECT 1 FROM remote_objects WHERE content_id = f.content_id "
      "AND destination = ?2 {1}) AND NOT EXISTS (SELECT 1 FROM pack_members m JOIN remote_packs r ON r.pack_id = "
      "m.pack_id WHERE m.content_id = f.content_id AND r.destination = ?2 {2}))",
      kOutsideReserved, verified, fingerprinted ? "AND r.checksum IS NOT NULL AND r.verified_at_ns IS NOT NULL" : "");
  return db.query_i64(sql, {Value{volume_id}, Value{destination}}).value_or(1) == 0;
}

std::int64_t count_objects(Db& db, const std::string& destination) {
  return db.query_i64("SELECT count(*) FROM remote_objects WHERE destination = ?", {Value{destination}}).value_or(0);
}

std::int64_t count_remote_packs(Db& db, const std::string& destination) {
  return db.query_i64("SELECT count(*) FROM remote_packs WHERE destination = ?", {Value{destination}}).value_or(0);
}

}  // namespace sq::store
