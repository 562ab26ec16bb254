#pragma once
// The folder tree of a volume: Merkle hashes and aggregates over the
// present files, kept current in the same transaction as every change.
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "core/hash.hpp"
#include "store/db.hpp"

namespace sq::store {

// Keyed BLAKE3 over empty input: the hash of an empty folder.
Digest empty_folder_hash();

class FolderTree {
 public:
  FolderTree(Db& db, std::int64_t volume_id);
  // Returns the folder id, creating it and every missing ancestor.
  std::int64_t ensure(const std::string& path);
  std::optional<std::int64_t> find(const std::string& path);
  // Recomputes the given folders and all their ancestors, deepest first.
  void recompute(const std::set<std::int64_t>& folder_ids, std::int64_t run_id);

  struct Computed {
    Digest shallow{}, deep{};
    std::int64_t file_count = 0, cumulative_size = 0;
  };
  // What a folder's values should be, derived from rows (children's stored values).
  Computed compute(std::int64_t folder_id);

 private:
  Db& db_;
  std::int64_t volume_id_;
  std::map<std::string, std::int64_t> cache_;
  Stmt find_, insert_, files_, children_, update_, parent_;
};

}  // namespace sq::store
