#include "store/remote_paths.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "store/artifacts.hpp"
#include "store/files.hpp"
#include "store/folders.hpp"

namespace sq::store {

namespace {

const std::set<std::string, std::less<>> kLedgerStates{"committing", "live", "displacing", "displaced", "lost"};

LedgerRow read_row(const Stmt& st) {
  LedgerRow r;
  r.id = st.i64(0);
  r.name = st.bytes_str(2);
  r.path = join_path(st.bytes_str(1), r.name);
  r.folder_id = st.i64(3);
  r.content_id = st.i64(4);
  r.hash = st.digest(5);
  r.written_run = st.i64(6);
  r.state = st.text(7);
  r.displaced_run = st.opt_i64(8);
  r.size = st.i64(9);
  r.mtime_ns = st.i64(10);
  r.checksum = st.opt_text(11);
  r.verified_at_ns = st.opt_i64(12);
  r.checksum_algo = st.opt_text(13);
  return r;
}

}  // namespace

std::vector<LedgerRow> ledger_rows(Db& db, const std::string& destination, std::int64_t volume_id,
                                   const std::vector<std::string>& states) {
  std::string sql =
      "SELECT p.id, d.path, p.name, p.folder_id, p.content_id, c.blake3, p.written_run_id, p.state, "
      "p.displaced_run_id, p.size_bytes, p.mtime_ns, p.checksum, p.verified_at_ns, p.checksum_algo FROM remote_paths p "
      "JOIN folders d "
      "ON d.id = p.folder_id JOIN contents c ON c.id = p.content_id WHERE p.destination = ? AND d.volume_id = ?";
  // The states go in as literals, not parameters: only then can SQLite
  // use the partial index of unsettled rows instead of scanning the ledger.
  if (!states.empty()) {
    sql += " AND p.state IN (";
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (!kLedgerStates.contains(states[i]))
        throw Error(ErrorKind::internal, fmt::format("no ledger state \"{}\"", states[i]));
      sql += fmt::format("{}'{}'", i ? "," : "", states[i]);
    }
    sql += ")";
  }
  sql += " ORDER BY d.path, p.name, p.id";
  Stmt st(db, sql);
  st.bind(1, destination).bind(2, volume_id);
  std::vector<LedgerRow> out;
  while (st.step()) out.push_back(read_row(st));
  return out;
}

bool has_ledger_rows(Db& db, const std::string& destination, std::int64_t volume_id) {
  return db
             .query_i64("SELECT EXISTS (SELECT 1 FROM remote_paths WHERE destination = ? AND folder_id IN (SELECT id "
                        "FROM folders WHERE volume_id = ?))",
                        {Value{destination}, Value{volume_id}})
             .value_or(0) != 0;
}

std::vector<std::int64_t> begin_commits(Db& db, const std::string& destination, std::int64_t volume_id,
                                        std::int64_t run_id, const std::vector<CommitIntent>& intents) {
  Tx tx(db);
  FolderTree tree(db, volume_id);
  Stmt ins(db,
           "INSERT INTO remote_paths(destination, folder_id, name, content_id, written_run_id, state, size_bytes, "
           "mtime_ns, checksum_algo, checksum, verified_at_ns) VALUES (?,?,?,?,?,'committing',?,?,?,?,?)");
  std::vector<std::int64_t> ids;
  for (const auto& i : intents) {
    auto [folder_path, name] = split_path(i.path);
    auto folder = tree.find(folder_path);
    if (!folder) throw Error(ErrorKind::internal, "commit intent for a path the index does not know");
    ins.reset();
    ins.bind(1, destination).bind(2, *folder).bind(3, blob_of(name)).bind(4, i.content_id).bind(5, run_id);
    ins.bind(6, i.size).bind(7, i.mtime_ns);
    ins.bind(8, i.checksum ? Value{i.checksum_algo} : Value{});
    ins.bind(9, i.checksum ? Value{*i.checksum} : Value{});
    ins.bind(10, i.verified_at_ns ? Value{*i.verified_at_ns} : Value{});
    ins.run();
    ids.push_back(db.last_insert_id());
  }
  tx.commit();
  return ids;
}

void transition(Db& db, const std::vector<std::int64_t>& ids, const std::string& from, const std::string& to,
                std::optional<std::int64_t> displaced_run) {
  if (ids.empty()) return;
  Tx tx(db);
  bool clears = to == "live" || to == "committing";
  Stmt st(db, fmt::format("UPDATE remote_paths SET state = ?1, displaced_run_id = {} WHERE id = ?2 AND state = ?3",
                          clears ? "NULL" : (displaced_run ? "?4" : "displaced_run_id")));
  for (auto id : ids) {
    st.reset();
    st.bind(1, to).bind(2, id).bind(3, from);
    if (!clears && displaced_run) st.bind(4, *displaced_run);
    st.run();
    if (db.changes() != 1)
      throw Error(ErrorKind::internal, fmt::format("ledger row {} is not {}; no transition applied", id, from));
  }
  tx.commit();
}

void mark_lost(Db& db, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  Tx tx(db);
  for (auto id : ids) {
    db.execute("UPDATE remote_paths SET state = 'lost' WHERE id = ? AND state != 'lost'", {Value{id}});
    if (db.changes() != 1) throw Error(ErrorKind::internal, fmt::format("ledger row {} is already lost", id));
  }
  tx.commit();
}

void record_verified_in_tx(Db& db, std::int64_t id, const std::string& hex, std::int64_t at_ns,
                           const std::string& algo) {
  db.execute(fmt::format("UPDATE remote_paths SET {} WHERE id = ?3 AND state IN ('live','displaced') AND {}", kStampSet,
                         kStampAllowed),
             {Value{hex}, Value{at_ns}, Value{id}, Value{algo}});
  if (db.changes() != 1)
    throw Error(ErrorKind::corrupt, fmt::format("ledger row {} cannot take checksum {}", id, hex));
}

std::int64_t count_lost_copies(Db& db, std::int64_t volume_id, const std::string& destination) {
  return db
      .query_i64(
          "SELECT count(*) FROM remote_paths r JOIN files f ON f.folder_id = r.folder_id AND f.name = r.name AND "
          "f.content_id = r.content_id JOIN folders d ON d.id = r.folder_id WHERE r.destination = ? AND "
          "d.volume_id = ? AND r.state = 'lost' AND f.status = 'present' AND NOT EXISTS (SELECT 1 FROM remote_paths l "
          "WHERE l.destination = r.destination AND l.folder_id = r.folder_id AND l.name = r.name AND "
          "l.state = 'live' AND l.content_id = r.content_id)",
          {Value{destination}, Value{volume_id}})
      .value_or(0);
}

std::vector<VersionCopy> copies_of_version(Db& db, std::int64_t volume_id, const std::string& path,
                                           std::int64_t content_id) {
  auto [folder, name] = split_path(path);
  Stmt st(db,
          "SELECT r.destination, r.state = 'live', COALESCE(r.displaced_run_id, 0) FROM remote_paths r JOIN folders d "
          "ON d.id = r.folder_id WHERE d.volume_id = ? AND d.path = ? AND r.name = ? AND r.content_id = ? AND "
          "r.state IN ('live', 'displaced') ORDER BY r.destination, r.state = 'live' DESC, r.displaced_run_id");
  st.bind(1, volume_id).bind(2, blob_of(folder)).bind(3, blob_of(name)).bind(4, content_id);
  std::vector<VersionCopy> out;
  while (st.step()) out.push_back({st.text(0), st.i64(1) != 0, st.i64(2)});
  return out;
}

}  // namespace sq::store
