// Offload flips, batched: the bytes are already gone when this runs, so a
// row that does not flip is reported, never retried silently. The intent
// journal around them makes a killed offload recoverable: intents commit
// before the first unlink, flips and intent removal commit together after.
#include "store/files.hpp"
#include <algorithm>

#include "core/error.hpp"
#include "store/folders.hpp"

namespace sq::store {

namespace {

std::vector<std::string> flip_in_tx(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                    const std::vector<OffloadFlip>& flips, const char* from, const char* to) {
  std::vector<std::string> failed;
  if (flips.empty()) return failed;
  FolderTree tree(db, volume_id);
  std::set<std::int64_t> folders;
  Stmt flip(db,
            "UPDATE files SET status = ?5, last_seen_run_id = ?1, status_changed_run_id = ?1 WHERE folder_id = ?2 AND "
            "name = ?3 AND content_id = ?4 AND status = ?6");
  for (const auto& f : flips) {
    auto [folder_path, name] = split_path(f.path);
    auto folder = tree.find(folder_path);
    if (!folder) {
      failed.push_back(f.path);
      continue;
    }
    flip.reset();
    flip.bind(1, run_id).bind(2, *folder).bind(3, blob_of(name)).bind(4, f.content_id).bind(5, to).bind(6, from);
    flip.run();
    if (db.changes() == 1) folders.insert(*folder);
    else failed.push_back(f.path);
  }
  tree.recompute(folders, run_id);
  return failed;
}

std::vector<std::string> flip_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                    const std::vector<OffloadFlip>& flips, const char* from, const char* to) {
  if (flips.empty()) return {};
  Tx tx(db);
  auto failed = flip_in_tx(db, volume_id, run_id, flips, from, to);
  tx.commit();
  return failed;
}

void drop_intents_in_tx(Db& db, std::int64_t volume_id, const std::vector<OffloadFlip>& rows) {
  FolderTree tree(db, volume_id);
  Stmt del(db, "DELETE FROM offload_intents WHERE folder_id = ? AND name = ? AND content_id = ?");
  for (const auto& r : rows) {
    auto [folder_path, name] = split_path(r.path);
    auto folder = tree.find(folder_path);
    if (!folder) continue;
    del.reset();
    del.bind(1, *folder).bind(2, blob_of(name)).bind(3, r.content_id);
    del.run();
  }
}

}  // namespace

void record_offload_intents(Db& db, std::int64_t volume_id, std::int64_t run_id,
                            const std::vector<OffloadFlip>& rows) {
  if (rows.empty()) return;
  Tx tx(db);
  FolderTree tree(db, volume_id);
  Stmt ins(db, "INSERT INTO offload_intents(folder_id, name, content_id, run_id) SELECT folder_id, name, content_id, "
               "?4 FROM files WHERE folder_id = ?1 AND name = ?2 AND content_id = ?3 AND status = 'present'");
  for (const auto& r : rows) {
    auto [folder_path, name] = split_path(r.path);
    auto folder = tree.find(folder_path);
    if (!folder) throw Error(ErrorKind::internal, "offload intent for a path without a folder row");
    ins.reset();
    ins.bind(1, *folder).bind(2, blob_of(name)).bind(3, r.content_id).bind(4, run_id);
    ins.run();
    if (db.changes() != 1) throw Error(ErrorKind::conflict, "a file to offload is no longer present in the index");
  }
  tx.commit();
}

std::vector<std::string> complete_offload_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                                const std::vector<OffloadFlip>& removed,
                                                const std::vector<OffloadFlip>& intended) {
  Tx tx(db);
  auto failed = flip_in_tx(db, volume_id, run_id, removed, "present", "offloaded");
  drop_intents_in_tx(db, volume_id, intended);
  tx.commit();
  return failed;
}

std::vector<OffloadIntent> pending_offload_intents(Db& db, std::int64_t volume_id) {
  Stmt st(db, "SELECT d.path, i.name, i.content_id, i.run_id FROM offload_intents i JOIN folders d ON d.id = "
              "i.folder_id WHERE d.volume_id = ? ORDER BY i.run_id, d.path, i.name");
  st.bind(1, volume_id);
  std::vector<OffloadIntent> out;
  while (st.step()) out.push_back({{join_path(st.bytes_str(0), st.bytes_str(1)), st.i64(2)}, st.i64(3)});
  return out;
}

std::int64_t count_offload_intents(Db& db, std::int64_t volume_id) {
  return db.query_i64("SELECT count(*) FROM offload_intents i JOIN folders d ON d.id = i.folder_id WHERE "
                      "d.volume_id = ?",
                      {Value{volume_id}})
      .value_or(0);
}

void settle_offload_intents(Db& db, std::int64_t volume_id, const std::vector<OffloadIntent>& gone,
                            const std::vector<OffloadIntent>& kept) {
  Tx tx(db);
  std::map<std::int64_t, std::vector<OffloadFlip>> by_run;
  for (const auto& g : gone) by_run[g.run_id].push_back(g.row);
  for (const auto& [run, rows] : by_run) flip_in_tx(db, volume_id, run, rows, "present", "offloaded");
  std::vector<OffloadFlip> all;
  for (const auto* list : {&gone, &kept})
    for (const auto& i : *list) all.push_back(i.row);
  drop_intents_in_tx(db, volume_id, all);
  tx.commit();
}

std::vector<std::string> mark_offloaded_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                              const std::vector<OffloadFlip>& flips) {
  return flip_batch(db, volume_id, run_id, flips, "present", "offloaded");
}

// A restored file was either offloaded or deleted by mistake (missing).
std::vector<std::string> mark_restored_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                             const std::vector<OffloadFlip>& flips) {
  if (flips.empty()) return {};
  Tx tx(db);
  auto not_offloaded = flip_in_tx(db, volume_id, run_id, flips, "offloaded", "present");
  std::vector<OffloadFlip> retry;
  for (const auto& f : flips)
    if (std::find(not_offloaded.begin(), not_offloaded.end(), f.path) != not_offloaded.end()) retry.push_back(f);
  auto failed = flip_in_tx(db, volume_id, run_id, retry, "missing", "present");
  tx.commit();
  return failed;
}

}  // namespace sq::store
