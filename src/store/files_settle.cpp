// The end of an index walk: flip what vanished, stamp what was seen.
#include "store/files.hpp"
#include "store/folders.hpp"

namespace sq::store {

std::int64_t settle_walk(Db& db, std::int64_t volume_id, std::int64_t run_id, const std::vector<UnseenRow>& unseen,
                         bool stamp_unchanged) {
  Tx tx(db);
  FolderTree tree(db, volume_id);
  std::set<std::int64_t> folders;
  std::int64_t flipped = 0;
  Stmt flip(db,
            "UPDATE files SET status = 'missing', last_seen_run_id = ?1, status_changed_run_id = ?1 WHERE folder_id = ?2 "
            "AND name = ?3 AND content_id = ?4 AND status = 'present'");
  for (const auto& u : unseen) {
    auto [folder_path, name] = split_path(u.path);
    auto folder = tree.find(folder_path);
    if (!folder) continue;
    flip.reset();
    flip.bind(1, run_id).bind(2, *folder).bind(3, blob_of(name)).bind(4, u.content_id);
    flip.run();
    if (db.changes() == 1) {
      ++flipped;
      folders.insert(*folder);
    }
  }
  tree.recompute(folders, run_id);
  if (stamp_unchanged)
    db.execute(
        "UPDATE files SET last_seen_run_id = ?1 WHERE status = 'present' AND last_seen_run_id != ?1 AND folder_id IN "
        "(SELECT id FROM folders WHERE volume_id = ?2)",
        {Value{run_id}, Value{volume_id}});
  tx.commit();
  return flipped;
}

namespace {

constexpr std::size_t kMaxExceptions = 500;

void stamp_folder(Db& db, std::int64_t folder_id, std::int64_t run_id, const std::set<std::string>& except) {
  std::string sql = "UPDATE files SET last_seen_run_id = ?1 WHERE folder_id = ?2 AND status = 'present' AND "
                    "last_seen_run_id != ?1";
  if (!except.empty()) {
    sql += " AND name NOT IN (";
    for (std::size_t i = 0; i < except.size(); ++i) sql += i ? ",?" : "?";
    sql += ")";
  }
  Stmt st(db, sql);
  st.bind(1, run_id).bind(2, folder_id);
  int at = 3;
  for (const auto& name : except) st.bind(at++, blob_of(name));
  st.run();
}

}  // namespace

void stamp_listed_folders(Db& db, std::int64_t volume_id, std::int64_t run_id,
                          const std::map<std::string, std::set<std::string>>& listed) {
  Tx tx(db);
  FolderTree tree(db, volume_id);
  for (const auto& [path, except] : listed) {
    auto folder = tree.find(path);
    if (folder && except.size() <= kMaxExceptions) stamp_folder(db, *folder, run_id, except);
  }
  tx.commit();
}

}  // namespace sq::store
