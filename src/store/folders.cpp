#include "store/folders.hpp"

#include <algorithm>
#include <vector>

#include "store/files.hpp"

namespace sq::store {

namespace {

constexpr const char* kFolderContext = "squirrel-folder-v1";

void put_named(Hasher& h, std::string_view name, const std::uint8_t* digest) {
  std::uint32_t n = static_cast<std::uint32_t>(name.size());
  std::uint8_t be[4] = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                        static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  h.update(be, 4);
  h.update(name);
  h.update(digest, 32);
}

std::string last_segment(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::size_t depth(const std::string& path) {
  return path.empty() ? 0 : 1 + static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
}

std::string as_string(const Blob& b) { return std::string(b.begin(), b.end()); }

}  // namespace

Digest empty_folder_hash() { return Hasher::derived(kFolderContext).finalize(); }

FolderTree::FolderTree(Db& db, std::int64_t volume_id)
    : db_(db),
      volume_id_(volume_id),
      find_(db, "SELECT id FROM folders WHERE volume_id = ? AND path = ?"),
      insert_(db, "INSERT INTO folders(volume_id, parent_id, path) VALUES (?, ?, ?)"),
      files_(db,
             "SELECT f.name, c.blake3, c.size_bytes FROM files f JOIN contents c ON c.id = f.content_id "
             "WHERE f.folder_id = ? AND f.status = 'present' ORDER BY f.name"),
      children_(db, "SELECT path, deep_blake3, file_count, cumulative_size FROM folders WHERE parent_id = ? ORDER BY path"),
      update_(db,
              "UPDATE folders SET shallow_blake3 = ?, deep_blake3 = ?, file_count = ?, cumulative_size = ?, "
              "last_changed_run_id = ? WHERE id = ?"),
      parent_(db, "SELECT parent_id, path FROM folders WHERE id = ?") {}

std::optional<std::int64_t> FolderTree::find(const std::string& path) {
  if (auto it = cache_.find(path); it != cache_.end()) return it->second;
  find_.reset();
  find_.bind(1, volume_id_).bind(2, blob_of(path));
  if (!find_.step()) return std::nullopt;
  auto id = find_.i64(0);
  find_.reset();  // not left on a row: that would block the checkpoint after the caller's commit
  cache_[path] = id;
  return id;
}

std::int64_t FolderTree::ensure(const std::string& path) {
  if (auto id = find(path)) return *id;
  Value parent;
  if (!path.empty()) {
    auto slash = path.rfind('/');
    parent = Value{ensure(slash == std::string::npos ? std::string() : path.substr(0, slash))};
  }
  insert_.reset();
  insert_.bind(1, volume_id_).bind(2, parent).bind(3, blob_of(path));
  insert_.run();
  auto id = db_.last_insert_id();
  cache_[path] = id;
  return id;
}

FolderTree::Computed FolderTree::compute(std::int64_t folder_id) {
  Computed c;
  Hasher shallow = Hasher::derived(kFolderContext);
  files_.reset();
  files_.bind(1, folder_id);
  while (files_.step()) {
    auto name = files_.blob(0);
    auto digest = files_.blob(1);
    put_named(shallow, std::string_view(reinterpret_cast<const char*>(name.data()), name.size()), digest.data());
    c.file_count += 1;
    c.cumulative_size += files_.i64(2);
  }
  c.shallow = shallow.finalize();
  Hasher deep = Hasher::derived(kFolderContext);
  deep.update(c.shallow.data(), c.shallow.size());
  Digest empty = empty_folder_hash();
  children_.reset();
  children_.bind(1, folder_id);
  while (children_.step()) {
    auto child_deep = children_.is_null(1) ? Blob(empty.begin(), empty.end()) : children_.blob(1);
    put_named(deep, last_segment(as_string(children_.blob(0))), child_deep.data());
    c.file_count += children_.i64(2);
    c.cumulative_size += children_.i64(3);
  }
  c.deep = deep.finalize();
  return c;
}

void FolderTree::recompute(const std::set<std::int64_t>& folder_ids, std::int64_t run_id) {
  std::map<std::int64_t, std::string> closure;  // id -> path
  for (auto id : folder_ids) {
    std::optional<std::int64_t> cur = id;
    while (cur && !closure.count(*cur)) {
      parent_.reset();
      parent_.bind(1, *cur);
      if (!parent_.step()) break;
      closure[*cur] = as_string(parent_.blob(1));
      cur = parent_.opt_i64(0);
    }
    parent_.reset();
  }
  std::vector<std::pair<std::int64_t, std::string>> order(closure.begin(), closure.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return depth(a.second) > depth(b.second); });
  for (const auto& [id, path] : order) {
    auto c = compute(id);
    update_.reset();
    update_.bind(1, Value{Blob(c.shallow.begin(), c.shallow.end())})
        .bind(2, Value{Blob(c.deep.begin(), c.deep.end())})
        .bind(3, c.file_count)
        .bind(4, c.cumulative_size)
        .bind(5, run_id)
        .bind(6, id);
    update_.run();
  }
}

}  // namespace sq::store
