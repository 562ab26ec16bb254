// Read models over files ⋈ folders ⋈ contents.
#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "store/files.hpp"
#include "store/folders.hpp"

namespace sq::store {

namespace {

constexpr const char* kFileSelect =
    "SELECT d.volume_id, v.name, v.path, d.path, f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, "
    "f.indexed_at_ns, f.status, f.first_seen_run_id, f.last_seen_run_id, f.status_changed_run_id, n.name, "
    "c.origin_run_id FROM files f JOIN folders d ON d.id = f.folder_id JOIN volumes v ON v.id = d.volume_id "
    "JOIN contents c ON c.id = f.content_id LEFT JOIN nodes n ON n.id = c.origin_node_id ";

FileRow read_file_row(const Stmt& st) {
  FileRow r;
  r.volume_id = st.i64(0);
  r.volume_name = st.text(1);
  r.volume_path = st.text(2);
  r.path = join_path(st.bytes_str(3), st.bytes_str(4));
  r.content_id = st.i64(5);
  r.hash = st.digest(6);
  r.size = st.i64(7);
  r.mtime_ns = st.i64(8);
  r.indexed_at_ns = st.i64(9);
  r.status = st.text(10);
  r.first_seen_run = st.i64(11);
  r.last_seen_run = st.i64(12);
  r.status_changed_run = st.i64(13);
  r.origin_node = st.opt_text(14);
  r.origin_run = st.opt_i64(15);
  return r;
}

std::vector<FileRow> select_rows(Db& db, const std::string& where, const std::vector<Value>& args) {
  Stmt st(db, std::string(kFileSelect) + where);
  st.bind_all(args);
  std::vector<FileRow> out;
  while (st.step()) out.push_back(read_file_row(st));
  return out;
}

Value volume_arg(std::optional<std::int64_t> v) { return v ? Value{*v} : Value{}; }

}  // namespace

std::vector<LiveRow> live_rows_in_folder(Db& db, std::int64_t volume_id, const std::string& folder) {
  Stmt st(db,
          "SELECT f.name, f.content_id, c.blake3, c.size_bytes, f.mtime_ns, COALESCE(f.inode, 0), f.status FROM files f "
          "JOIN folders d ON d.id = f.folder_id JOIN contents c ON c.id = f.content_id WHERE d.volume_id = ? AND "
          "d.path = ? AND f.status != 'superseded' ORDER BY f.name");
  st.bind(1, volume_id).bind(2, blob_of(folder));
  std::vector<LiveRow> out;
  while (st.step()) {
    LiveRow r;
    r.name = st.bytes_str(0);
    r.content_id = st.i64(1);
    r.hash = st.digest(2);
    r.size = st.i64(3);
    r.mtime_ns = st.i64(4);
    r.inode = st.i64(5);
    r.status = st.text(6);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<FileRow> live_row_by_path(Db& db, std::int64_t volume_id, const std::string& path) {
  auto [folder, name] = split_path(path);
  auto rows = select_rows(db, "WHERE d.volume_id = ? AND d.path = ? AND f.name = ? AND f.status != 'superseded'",
                          {Value{volume_id}, blob_of(folder), blob_of(name)});
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

std::vector<FileRow> history_by_path(Db& db, std::int64_t volume_id, const std::string& path) {
  auto [folder, name] = split_path(path);
  return select_rows(db,
                     "WHERE d.volume_id = ? AND d.path = ? AND f.name = ? ORDER BY f.first_seen_run_id, f.content_id",
                     {Value{volume_id}, blob_of(folder), blob_of(name)});
}

std::vector<FileRow> rows_by_hash(Db& db, const Digest& hash) {
  return select_rows(db, "WHERE c.blake3 = ? ORDER BY v.name, d.path, f.name",
                     {Value{Blob(hash.begin(), hash.end())}});
}

std::vector<FileRow> rows_with_status(Db& db, std::optional<std::int64_t> volume_id, const std::string& status) {
  return select_rows(db, "WHERE f.status = ? AND (?2 IS NULL OR d.volume_id = ?2) ORDER BY v.name, d.path, f.name",
                     {Value{status}, volume_arg(volume_id)});
}

std::vector<FileRow> duplicate_rows(Db& db, std::optional<std::int64_t> volume_id) {
  return select_rows(db,
                     "WHERE f.status = 'present' AND (?1 IS NULL OR d.volume_id = ?1) AND f.content_id IN ("
                     "SELECT f2.content_id FROM files f2 JOIN folders d2 ON d2.id = f2.folder_id WHERE f2.status = "
                     "'present' AND (?1 IS NULL OR d2.volume_id = ?1) GROUP BY f2.content_id HAVING count(*) > 1) "
                     "ORDER BY c.blake3, v.name, d.path, f.name",
                     {volume_arg(volume_id)});
}

std::vector<FileRow> rows_from_origin(Db& db, std::int64_t origin_node_id) {
  return select_rows(db, "WHERE c.origin_node_id = ? AND f.status != 'superseded' ORDER BY v.name, d.path, f.name",
                     {Value{origin_node_id}});
}

std::int64_t count_live(Db& db, std::int64_t volume_id) {
  return db
      .query_i64("SELECT count(*) FROM files f JOIN folders d ON d.id = f.folder_id WHERE d.volume_id = ? AND "
                 "f.status != 'superseded'",
                 {Value{volume_id}})
      .value_or(0);
}

std::vector<std::string> folder_divergences(Db& db, std::int64_t volume_id) {
  std::vector<std::string> out;
  FolderTree tree(db, volume_id);
  Stmt st(db,
          "SELECT id, path, shallow_blake3, deep_blake3, file_count, cumulative_size FROM folders WHERE volume_id = ? "
          "ORDER BY path");
  st.bind(1, volume_id);
  while (st.step()) {
    auto c = tree.compute(st.i64(0));
    auto path = st.bytes_str(1);
    std::string shown = path.empty() ? "(root)" : path;
    if (st.is_null(2) || st.blob(2) != Blob(c.shallow.begin(), c.shallow.end()))
      out.push_back(fmt::format("{}: shallow hash differs", shown));
    if (st.is_null(3) || st.blob(3) != Blob(c.deep.begin(), c.deep.end()))
      out.push_back(fmt::format("{}: deep hash differs", shown));
    if (st.i64(4) != c.file_count)
      out.push_back(fmt::format("{}: file_count {} but rows say {}", shown, st.i64(4), c.file_count));
    if (st.i64(5) != c.cumulative_size)
      out.push_back(fmt::format("{}: cumulative_size {} but rows say {}", shown, st.i64(5), c.cumulative_size));
  }
  return out;
}

}  // namespace sq::store
