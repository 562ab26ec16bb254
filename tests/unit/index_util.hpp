#pragma once
// Helpers shared by the files-store and index tests: a config pointing a
// volume at a temporary tree, file writing with explicit mtimes, and
// independent views of the database (live set, table dumps, a from-scratch
// recomputation of every folder's Merkle hashes and aggregates).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/hash.hpp"
#include "engine/index.hpp"
#include "store/db.hpp"
#include "store/files.hpp"
#include "store/volumes.hpp"
#include "test_util.hpp"

namespace sq::test {

namespace fs = std::filesystem;

// A config with one volume `name` rooted at `root`.
inline config::Config volume_config(const fs::path& root, const std::string& name = "v") {
  return config::parse("[volumes." + name + "]\npath = '" + root.string() + "'\n", root.parent_path() / "config.toml");
}

inline void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void set_mtime_ns(const fs::path& p, std::int64_t ns) {
  struct timespec ts[2] = {{ns / 1000000000, ns % 1000000000}, {ns / 1000000000, ns % 1000000000}};
  if (::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    throw std::runtime_error("utimensat failed on " + p.string());
}

inline std::int64_t mtime_ns(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat failed on " + p.string());
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

inline engine::IndexOptions index_opts(bool shallow = false, bool dry_run = false, int workers = 2) {
  engine::IndexOptions o;
  o.shallow = shallow;
  o.dry_run = dry_run;
  o.workers = workers;
  return o;
}

inline engine::IndexOptions audit_opts(bool deep) {
  engine::IndexOptions o;
  o.mode = deep ? engine::IndexMode::audit_deep : engine::IndexMode::audit;
  o.workers = 2;
  return o;
}

inline std::int64_t volume_id(store::Db& db, const std::string& name = "v") {
  auto row = store::find_volume(db, name);
  if (!row) throw std::runtime_error("volume " + name + " is not indexed");
  return row->id;
}

struct LiveEntry {
  Digest hash{};
  std::string status;
  bool operator==(const LiveEntry&) const = default;
};
using LiveSet = std::map<std::string, LiveEntry>;

inline std::string blob_text(const store::Value& v) {
  const auto& b = std::get<store::Blob>(v);
  return std::string(b.begin(), b.end());
}

inline Digest blob_digest(const store::Value& v) {
  Digest d{};
  const auto& b = std::get<store::Blob>(v);
  std::copy_n(b.begin(), std::min<std::size_t>(32, b.size()), d.begin());
  return d;
}

inline std::string join_path(const std::string& folder, const std::string& name) {
  return folder.empty() ? name : folder + "/" + name;
}

// Every live (non-superseded) row of the volume: path -> (hash, status).
inline LiveSet live_set(store::Db& db, std::int64_t vol) {
  LiveSet out;
  auto rows = db.query_rows(
      "SELECT d.path, f.name, c.blake3, f.status FROM files f JOIN folders d ON d.id = f.folder_id JOIN contents c "
      "ON c.id = f.content_id WHERE d.volume_id = ? AND f.status != 'superseded'",
      {store::Value{vol}});
  for (const auto& r : rows)
    out[join_path(blob_text(r[0]), blob_text(r[1]))] = {blob_digest(r[2]), std::get<std::string>(r[3])};
  return out;
}

// The live set restricted to present rows: path -> hash.
inline std::map<std::string, Digest> present_set(store::Db& db, std::int64_t vol) {
  std::map<std::string, Digest> out;
  for (const auto& [path, e] : live_set(db, vol))
    if (e.status == "present") out[path] = e.hash;
  return out;
}

// Regular files on disk beneath root (not following symlinks, without the
// root's marker): path -> BLAKE3 of the bytes.
inline std::map<std::string, Digest> disk_set(const fs::path& root) {
  std::map<std::string, Digest> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || it->is_symlink()) continue;
    auto rel = fs::relative(it->path(), root).string();
    if (rel == ".squirrel-volume") continue;
    out[rel] = blake3(read_bytes(it->path()));
  }
  return out;
}

// The largest number of live rows any path has (the invariant says <= 1).
inline std::int64_t max_live_rows_per_path(store::Db& db) {
  return db
      .query_i64("SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM files WHERE status != 'superseded' "
                 "GROUP BY folder_id, name)")
      .value_or(-1);
}

using Rows = std::vector<std::vector<store::Value>>;

// The index tables without their wall-clock columns.
inline Rows dump_index_tables(store::Db& db) {
  Rows out;
  for (const char* sql :
       {"SELECT 'v', id, name, path, NULL, NULL, NULL, NULL, NULL, NULL FROM volumes ORDER BY id",
        "SELECT 'c', id, blake3, size_bytes, origin_node_id, origin_run_id, NULL, NULL, NULL, NULL FROM contents "
        "ORDER BY id",
        "SELECT 'd', id, volume_id, parent_id, path, shallow_blake3, deep_blake3, last_changed_run_id, file_count, "
        "cumulative_size FROM folders ORDER BY id",
        "SELECT 'f', folder_id, name, content_id, mtime_ns, inode, status, first_seen_run_id, last_seen_run_id, "
        "status_changed_run_id FROM files ORDER BY folder_id, name, content_id",
        "SELECT 'r', id, kind, volume_id, status, error, file_count, changed_count, shallow, NULL FROM runs ORDER BY "
        "id"}) {
    auto rows = db.query_rows(sql);
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

// Every row of every table, timestamps included.
inline Rows dump_everything(store::Db& db) {
  Rows out;
  auto tables = db.query_rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  for (const auto& t : tables) {
    auto name = std::get<std::string>(t[0]);
    auto rows = db.query_rows("SELECT '" + name + "', * FROM \"" + name + "\"");
    std::sort(rows.begin(), rows.end());
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

// ---- folders recomputed from scratch ------------------------------------

struct FolderValues {
  Digest shallow{}, deep{};
  std::int64_t file_count = 0, cumulative_size = 0;
};

inline void put_named(Hasher& h, const std::string& name, const Digest& d) {
  auto n = static_cast<std::uint32_t>(name.size());
  std::uint8_t be[4] = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                        static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  h.update(be, 4);
  h.update(name);
  h.update(d.data(), d.size());
}

inline std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

inline std::string leaf_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The present files of each folder path: name -> (hash, size), by name bytes.
inline std::map<std::string, std::map<std::string, std::pair<Digest, std::int64_t>>> present_by_folder(
    store::Db& db, std::int64_t vol) {
  std::map<std::string, std::map<std::string, std::pair<Digest, std::int64_t>>> out;
  auto rows = db.query_rows(
      "SELECT d.path, f.name, c.blake3, c.size_bytes FROM files f JOIN folders d ON d.id = f.folder_id JOIN contents c "
      "ON c.id = f.content_id WHERE d.volume_id = ? AND f.status = 'present'",
      {store::Value{vol}});
  for (const auto& r : rows)
    out[blob_text(r[0])][blob_text(r[1])] = {blob_digest(r[2]), std::get<std::int64_t>(r[3])};
  return out;
}

// The spec's definitions (data-model §3.4) applied to the folder paths and
// present rows alone, deepest folder first; nothing stored is trusted.
inline std::map<std::string, FolderValues> folders_from_scratch(store::Db& db, std::int64_t vol,
                                                                const std::vector<std::string>& paths) {
  auto files = present_by_folder(db, vol);
  std::vector<std::string> order = paths;
  auto depth = [](const std::string& p) { return p.empty() ? 0 : 1 + std::count(p.begin(), p.end(), '/'); };
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return depth(a) > depth(b); });
  std::map<std::string, FolderValues> out;
  for (const auto& path : order) {
    FolderValues v;
    Hasher shallow = Hasher::derived("squirrel-folder-v1");
    for (const auto& [name, hs] : files[path]) {
      put_named(shallow, name, hs.first);
      v.file_count += 1;
      v.cumulative_size += hs.second;
    }
    v.shallow = shallow.finalize();
    Hasher deep = Hasher::derived("squirrel-folder-v1");
    deep.update(v.shallow.data(), v.shallow.size());
    for (const auto& [child, cv] : out)  // sorted by path: siblings come in name order
      if (!child.empty() && child != path && parent_of(child) == path) {
        put_named(deep, leaf_of(child), cv.deep);
        v.file_count += cv.file_count;
        v.cumulative_size += cv.cumulative_size;
      }
    v.deep = deep.finalize();
    out[path] = v;
  }
  return out;
}

// Differences between the stored folder rows and a from-scratch
// recomputation, plus whatever the store's own audit reports. Empty means
// consistent.
inline std::vector<std::string> folder_problems(store::Db& db, std::int64_t vol) {
  auto problems = store::folder_divergences(db, vol);
  auto rows = db.query_rows(
      "SELECT d.path, p.path, d.shallow_blake3, d.deep_blake3, d.file_count, d.cumulative_size FROM folders d LEFT "
      "JOIN folders p ON p.id = d.parent_id WHERE d.volume_id = ?",
      {store::Value{vol}});
  std::vector<std::string> paths;
  for (const auto& r : rows) paths.push_back(blob_text(r[0]));
  auto expected = folders_from_scratch(db, vol, paths);
  for (const auto& r : rows) {
    auto path = blob_text(r[0]);
    const auto& e = expected[path];
    bool root = path.empty();
    if (root != std::holds_alternative<std::monostate>(r[1]) || (!root && blob_text(r[1]) != parent_of(path)))
      problems.push_back("'" + path + "': wrong parent");
    if (std::holds_alternative<std::monostate>(r[2]) || blob_digest(r[2]) != e.shallow)
      problems.push_back("'" + path + "': shallow differs from scratch");
    if (std::holds_alternative<std::monostate>(r[3]) || blob_digest(r[3]) != e.deep)
      problems.push_back("'" + path + "': deep differs from scratch");
    if (std::get<std::int64_t>(r[4]) != e.file_count || std::get<std::int64_t>(r[5]) != e.cumulative_size)
      problems.push_back("'" + path + "': aggregates differ from scratch");
  }
  return problems;
}

}  // namespace sq::test
