// Offload flips, batched: the bytes are already gone when this runs, so a
// row that does not flip is reported, never retried silently.
#include "store/files.hpp"
#include "store/folders.hpp"

namespace sq::store {

namespace {

std::vector<std::string> flip_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                    const std::vector<OffloadFlip>& flips, const char* from, const char* to) {
  std::vector<std::string> failed;
  if (flips.empty()) return failed;
  Tx tx(db);
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
  tx.commit();
  return failed;
}

}  // namespace

std::vector<std::string> mark_offloaded_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                              const std::vector<OffloadFlip>& flips) {
  return flip_batch(db, volume_id, run_id, flips, "present", "offloaded");
}

std::vector<std::string> mark_restored_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                             const std::vector<OffloadFlip>& flips) {
  return flip_batch(db, volume_id, run_id, flips, "offloaded", "present");
}

}  // namespace sq::store
