#include "store/artifacts.hpp"

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

std::int64_t count_objects(Db& db, const std::string& destination) {
  return db.query_i64("SELECT count(*) FROM remote_objects WHERE destination = ?", {Value{destination}}).value_or(0);
}

std::int64_t count_remote_packs(Db& db, const std::string& destination) {
  return db.query_i64("SELECT count(*) FROM remote_packs WHERE destination = ?", {Value{destination}}).value_or(0);
}

}  // namespace sq::store
