#include "store/files.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "store/folders.hpp"

namespace sq::store {

std::pair<std::string, std::string> split_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

namespace {

std::string_view digest_bytes(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

// Prepared statements for one batch; a batch is one transaction.
class BatchWriter {
 public:
  BatchWriter(Db& db, std::int64_t volume_id, std::int64_t run_id, const Provenance& prov)
      : db_(db), run_(run_id), prov_(prov), tree_(db, volume_id), now_(now_ns()),
        live_(db, "SELECT content_id, status FROM files WHERE folder_id = ? AND name = ? AND status != 'superseded'"),
        content_(db, "SELECT id, size_bytes FROM contents WHERE blake3 = ?"),
        add_content_(db,
                     "INSERT INTO contents(blake3, size_bytes, origin_node_id, origin_run_id) VALUES (?,?,?,?) "
                     "ON CONFLICT(blake3) DO NOTHING"),
        touch_(db,
               "UPDATE files SET last_seen_run_id = ?1, mtime_ns = ?2, inode = ?3, indexed_at_ns = ?4, "
               "status_changed_run_id = CASE WHEN status = 'present' THEN status_changed_run_id ELSE ?1 END, "
               "status = 'present' WHERE folder_id = ?5 AND name = ?6 AND content_id = ?7"),
        supersede_(db,
                   "UPDATE files SET status = 'superseded', status_changed_run_id = ? WHERE folder_id = ? AND name = ? "
                   "AND status != 'superseded'"),
        exists_(db, "SELECT 1 FROM files WHERE folder_id = ? AND name = ? AND content_id = ?"),
        insert_(db,
                "INSERT INTO files(folder_id, name, content_id, mtime_ns, inode, status, first_seen_run_id, "
                "last_seen_run_id, status_changed_run_id, indexed_at_ns) VALUES (?1,?2,?3,?4,?5,'present',?6,?6,?6,?7)") {}

  Change apply(const Observation& o);
  void finish() { tree_.recompute(touched_, run_); }

 private:
  std::int64_t resolve_content(const Observation& o);
  void revive_or_insert(std::int64_t folder, const std::string& name, std::int64_t content, const Observation& o);
  void touch(std::int64_t folder, const std::string& name, std::int64_t content, const Observation& o);
  void insert_row(std::int64_t folder, const std::string& name, std::int64_t content, const Observation& o);

  Db& db_;
  std::int64_t run_;
  Provenance prov_;
  FolderTree tree_;
  std::int64_t now_;
  std::set<std::int64_t> touched_;
  Stmt live_, content_, add_content_, touch_, supersede_, exists_, insert_;
};

// Inserting first and looking up only on conflict costs one statement for
// new content, which is what a first index mostly sees.
std::int64_t BatchWriter::resolve_content(const Observation& o) {
  add_content_.reset();
  add_content_.bind_bytes(1, digest_bytes(o.hash))
      .bind(2, o.size)
      .bind(3, prov_.origin_node_id ? Value{*prov_.origin_node_id} : Value{})
      .bind(4, prov_.origin_run_id ? Value{*prov_.origin_run_id} : Value{});
  add_content_.run();
  if (db_.changes() == 1) return db_.last_insert_id();
  content_.reset();
  content_.bind_bytes(1, digest_bytes(o.hash));
  if (!content_.step()) throw Error(ErrorKind::internal, "content vanished between insert and lookup");
  if (content_.i64(1) != o.size)
    throw Error(ErrorKind::corrupt, fmt::format("content {} is recorded with {} bytes but {} has {} — the file "
                                                "changed while it was read; re-run the index",
                                                to_hex(o.hash), content_.i64(1), escape_for_display(o.path), o.size));
  return content_.i64(0);
}

void BatchWriter::touch(std::int64_t folder, const std::string& name, std::int64_t content, const Observation& o) {
  touch_.reset();
  touch_.bind(1, run_).bind(2, o.mtime_ns).bind(3, o.inode).bind(4, now_).bind(5, folder).bind_bytes(6, name);
  touch_.bind(7, content);
  touch_.run();
}

void BatchWriter::revive_or_insert(std::int64_t folder, const std::string& name, std::int64_t content,
                                   const Observation& o) {
  exists_.reset();
  exists_.bind(1, folder).bind_bytes(2, name).bind(3, content);
  if (exists_.step()) return touch(folder, name, content, o);  // a revert revives the old row
  insert_row(folder, name, content, o);
}

void BatchWriter::insert_row(std::int64_t folder, const std::string& name, std::int64_t content, const Observation& o) {
  insert_.reset();
  insert_.bind(1, folder).bind_bytes(2, name).bind(3, content).bind(4, o.mtime_ns).bind(5, o.inode);
  insert_.bind(6, run_).bind(7, now_);
  insert_.run();
}

Change BatchWriter::apply(const Observation& o) {
  auto [folder_path, name] = split_path(o.path);
  if (name.empty()) throw Error(ErrorKind::internal, "empty file name in index batch");
  std::int64_t folder = tree_.ensure(folder_path);
  if (o.known_absent && !o.touch_only) {
    std::int64_t fresh = resolve_content(o);
    touched_.insert(folder);
    insert_row(folder, name, fresh, o);
    return Change::added;
  }
  live_.reset();
  live_.bind(1, folder).bind_bytes(2, name);
  std::optional<std::int64_t> live_content;
  std::string live_status;
  if (live_.step()) {
    live_content = live_.i64(0);
    live_status = live_.text(1);
  }
  if (o.touch_only) {
    if (!live_content || live_status != "present")
      throw Error(ErrorKind::internal, fmt::format("shallow touch of {} without a present row", escape_for_display(o.path)));
    touch(folder, name, *live_content, o);
    return Change::unchanged;
  }
  std::int64_t content = resolve_content(o);
  touched_.insert(folder);
  if (live_content && *live_content == content) {
    touch(folder, name, content, o);
    return live_status == "present" ? Change::unchanged : Change::modified;
  }
  if (live_content) {
    supersede_.reset();
    supersede_.bind(1, run_).bind(2, folder).bind_bytes(3, name);
    supersede_.run();
  }
  revive_or_insert(folder, name, content, o);
  return live_content ? Change::modified : Change::added;
}

}  // namespace

BatchCounts apply_index_entries(Db& db, std::int64_t volume_id, std::int64_t run_id,
                                const std::vector<Observation>& entries, const Provenance& prov) {
  if (!db.in_transaction()) throw Error(ErrorKind::internal, "index entries applied outside a write transaction");
  BatchCounts counts;
  // The writer's statements are done with when it goes out of scope: one
  // left on a row keeps the connection reading, and SQLite's automatic
  // checkpoint after the commit then fails, so the WAL would only grow.
  BatchWriter w(db, volume_id, run_id, prov);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Change c;
    try {
      c = w.apply(entries[i]);
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("index batch entry {}: {}", i, e.what()));
    }
    counts.added += c == Change::added;
    counts.modified += c == Change::modified;
    counts.unchanged += c == Change::unchanged;
  }
  w.finish();
  return counts;
}

BatchCounts apply_index_batch(Db& db, std::int64_t volume_id, std::int64_t run_id,
                              const std::vector<Observation>& entries, const Provenance& prov) {
  Tx tx(db);
  auto counts = apply_index_entries(db, volume_id, run_id, entries, prov);
  tx.commit();
  return counts;
}

std::int64_t mark_missing(Db& db, std::int64_t volume_id, std::int64_t run_id) {
  Tx tx(db);
  std::set<std::int64_t> folders;
  Stmt st(db,
          "SELECT DISTINCT f.folder_id FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.volume_id = ? AND "
          "f.status = 'present' AND f.last_seen_run_id != ?");
  st.bind(1, volume_id).bind(2, run_id);
  while (st.step()) folders.insert(st.i64(0));
  db.execute(
      "UPDATE files SET status = 'missing', last_seen_run_id = ?1, status_changed_run_id = ?1 WHERE status = "
      "'present' AND last_seen_run_id != ?1 AND folder_id IN (SELECT id FROM folders WHERE volume_id = ?2)",
      {Value{run_id}, Value{volume_id}});
  auto flipped = db.changes();
  FolderTree(db, volume_id).recompute(folders, run_id);
  tx.commit();
  return flipped;
}

void mark_offloaded(Db& db, std::int64_t volume_id, const std::string& path, std::int64_t content_id,
                    std::int64_t run_id) {
  Tx tx(db);
  FolderTree tree(db, volume_id);
  auto [folder_path, name] = split_path(path);
  auto folder = tree.find(folder_path);
  if (!folder) throw Error(ErrorKind::not_found, fmt::format("no indexed file at {}", escape_for_display(path)));
  db.execute(
      "UPDATE files SET status = 'offloaded', last_seen_run_id = ?1, status_changed_run_id = ?1 WHERE folder_id = ?2 "
      "AND name = ?3 AND content_id = ?4 AND status = 'present'",
      {Value{run_id}, Value{*folder}, blob_of(name), Value{content_id}});
  if (db.changes() != 1)
    throw Error(ErrorKind::refused, fmt::format("{} has no present row with that content — nothing was flipped",
                                                escape_for_display(path)));
  tree.recompute({*folder}, run_id);
  tx.commit();
}

bool volume_has_files(Db& db, std::int64_t volume_id) {
  return db
             .query_i64("SELECT EXISTS (SELECT 1 FROM files WHERE folder_id IN (SELECT id FROM folders WHERE "
                        "volume_id = ?))",
                        {Value{volume_id}})
             .value_or(0) != 0;
}

}  // namespace sq::store
