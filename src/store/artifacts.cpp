#include "store/artifacts.hpp"

#include <fmt/format.h>

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
