// Whether the tree changed since the last index, answered cheaply enough
// for status: the folders the index knows are listed, most recently
// changed first, and each entry is compared by size and mtime with its row
// (the same judgement a shallow index makes), until a budget of entries is
// spent. Folders the index does not know are looked into too, so files
// added in a new folder count.
#include <deque>
#include <map>
#include <set>

#include "core/reserved.hpp"
#include "engine/status.hpp"
#include "engine/walk.hpp"
#include "store/files.hpp"

namespace sq::engine {

namespace {

struct Recorded {
  std::string status;
  std::int64_t size = 0, mtime_ns = 0;
};

// The rows a walk of `folder` would meet: present, offloaded and missing.
std::map<std::string, Recorded> recorded_in(store::Stmt& st, std::int64_t folder_id) {
  st.reset();
  st.bind(1, folder_id);
  std::map<std::string, Recorded> out;
  while (st.step()) out[st.bytes_str(0)] = {st.text(1), st.i64(2), st.i64(3)};
  return out;
}

// Entries squirrel itself keeps in a volume (the marker among them) are
// not user data.
bool ours(const std::string& folder, const DirEntry& e) { return reserved_file(folder, e.name); }

class DriftCheck {
 public:
  DriftCheck(store::Db& db, int root, std::int64_t budget)
      : root_(root),
        budget_(budget),
        rows_(db,
              "SELECT f.name, f.status, c.size_bytes, f.mtime_ns FROM files f JOIN contents c ON c.id = f.content_id "
              "WHERE f.folder_id = ? AND f.status IN ('present', 'offloaded', 'missing')") {}

  // Compares one folder the index knows; false when the budget ran out.
  bool known(std::int64_t id, const std::string& folder, const std::set<std::string>& folders) {
    auto rows = recorded_in(rows_, id);
    auto listing = list_directory(root_, folder);
    if (!listing.error.empty()) {
      for (const auto& [name, r] : rows)
        if (r.status == "present") return changed(join_rel(folder, name));
      return spend(1);
    }
    for (const auto& e : listing.entries) {
      if (ours(folder, e)) continue;
      std::string path = join_rel(folder, e.name);
      if (e.type == DirEntry::Type::directory && !folders.count(path)) unknown_.push_back(path);
      if (e.type != DirEntry::Type::file) continue;
      auto r = rows.find(e.name);
      if (r == rows.end() || r->second.status != "present" || r->second.size != e.stat.size ||
          r->second.mtime_ns != e.stat.mtime_ns)
        changed(path);
      if (r != rows.end()) rows.erase(r);
      if (!spend(1)) return false;
    }
    for (const auto& [name, r] : rows)  // recorded present, gone from the folder
      if (r.status == "present") changed(join_rel(folder, name));
    return spend(static_cast<std::int64_t>(rows.size()));
  }

  // Looks into folders the index does not know: any file there is new.
  void unknown_folders() {
    while (!unknown_.empty() && drift.examined < budget_) {
      std::string folder = unknown_.front();
      unknown_.pop_front();
      for (const auto& e : list_directory(root_, folder).entries) {
        if (ours(folder, e)) continue;
        if (e.type == DirEntry::Type::directory) unknown_.push_back(join_rel(folder, e.name));
        if (e.type == DirEntry::Type::file) changed(join_rel(folder, e.name));
        if (!spend(1)) return;
      }
    }
  }

  bool done_with_unknown() const { return unknown_.empty(); }

  TreeDrift drift;

 private:
  bool changed(const std::string& path) {
    if (drift.changed++ == 0) drift.first = path;
    return true;
  }
  bool spend(std::int64_t n) {
    drift.examined += n;
    return drift.examined < budget_;
  }

  int root_;
  std::int64_t budget_;
  store::Stmt rows_;
  std::deque<std::string> unknown_;
};

}  // namespace

TreeDrift tree_drift(store::Db& db, std::int64_t volume_id, int root, std::int64_t budget) {
  std::vector<std::pair<std::int64_t, std::string>> order;  // the top first, then most recently changed
  std::set<std::string> folders;
  store::Stmt st(db,
                 "SELECT id, path FROM folders WHERE volume_id = ? ORDER BY parent_id IS NOT NULL, "
                 "last_changed_run_id DESC, path");
  st.bind(1, volume_id);
  while (st.step()) {
    order.emplace_back(st.i64(0), st.bytes_str(1));
    folders.insert(order.back().second);
  }
  DriftCheck check(db, root, budget);
  bool within = true;
  for (const auto& [id, path] : order)
    if (!(within = check.known(id, path, folders))) break;
  if (within) check.unknown_folders();
  check.drift.complete = within && check.drift.examined < budget && check.done_with_unknown();
  return check.drift;
}

}  // namespace sq::engine
