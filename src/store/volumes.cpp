#include "store/volumes.hpp"

#include "core/error.hpp"

#include "core/text.hpp"

namespace sq::store {

namespace {
VolumeRow read_volume(const Stmt& st) { return {st.i64(0), st.text(1), st.text(2), st.i64(3), st.opt_i64(4)}; }
}  // namespace

std::string database_identity(Db& db) {
  auto rows = db.query_rows("SELECT id FROM database_identity WHERE singleton = 1");
  if (rows.empty()) throw Error(ErrorKind::corrupt, "the index database has no identity row — run `squirrel db check`");
  return std::get<std::string>(rows[0][0]);
}

std::string self_node_name(Db& db) {
  auto rows = db.query_rows("SELECT name FROM nodes WHERE endpoint IS NULL");
  return rows.empty() ? std::string() : std::get<std::string>(rows[0][0]);
}

std::optional<VolumeRow> find_volume(Db& db, const std::string& name) {
  Stmt st(db, "SELECT id, name, path, created_at_ns, forgotten_run_id FROM volumes WHERE name = ?");
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return read_volume(st);
}

std::vector<VolumeRow> list_volumes(Db& db, bool with_forgotten) {
  Stmt st(db, with_forgotten ? "SELECT id, name, path, created_at_ns, forgotten_run_id FROM volumes ORDER BY name"
                             : "SELECT id, name, path, created_at_ns, forgotten_run_id FROM volumes WHERE "
                               "forgotten_run_id IS NULL ORDER BY name");
  std::vector<VolumeRow> out;
  while (st.step()) out.push_back(read_volume(st));
  return out;
}

VolumeRow create_volume(Db& db, const std::string& name, const std::string& path) {
  std::int64_t now = now_ns();
  db.execute("INSERT INTO volumes(name, path, created_at_ns) VALUES (?,?,?)",
             {Value{name}, Value{path}, Value{now}});
  return {db.last_insert_id(), name, path, now, std::nullopt};
}

void set_forgotten(Db& db, std::int64_t volume_id, std::optional<std::int64_t> run_id) {
  db.execute("UPDATE volumes SET forgotten_run_id = ? WHERE id = ?",
             {run_id ? Value{*run_id} : Value{}, Value{volume_id}});
}

}  // namespace sq::store
