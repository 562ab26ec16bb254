#pragma once
// Helpers for the trust-loop tests (loop_test.cpp, loop_stress_test.cpp):
// a CliSandbox whose volume `photos` syncs to a local mirror `usb` and
// requires it for offload, JSON and run-table views through the real
// binary, and read-only views of the database and of trees on disk.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "core/hash.hpp"
#include "store/db.hpp"

namespace sq::test {

namespace fs = std::filesystem;

// CliSandbox's volume `photos` at vol/photos, plus destination `usb` (a
// local mirror at <tmp>/dest/usb) in its sync_to and offload_requires.
class LoopSandbox : public CliSandbox {
 public:
  explicit LoopSandbox(const std::string& volume_keys = "") { configure(volume_keys); }

  fs::path dest_root() const { return root() / "dest" / "usb"; }
  fs::path vdest() const { return dest_root() / "photos"; }
  fs::path vol(const std::string& rel) const { return volume_dir() / rel; }

  // Rewrites the config; `volume_keys` go into [volumes.photos].
  void configure(const std::string& volume_keys, const fs::path& volume_path = {}) const {
    auto path = volume_path.empty() ? volume_dir() : volume_path;
    write_config_raw("[volumes.photos]\npath = \"" + path.string() +
                     "\"\nsync_to = [\"usb\"]\noffload_requires = [\"usb\"]\n" + volume_keys +
                     "\n\n[destinations.usb]\ntype = \"local\"\nroot = \"" + dest_root().string() + "\"\n");
  }

  // Runs squirrel and expects `want` as the exit status.
  CliResult expect(int want, const std::vector<std::string>& args) const {
    auto r = run(args);
    EXPECT_EQ(r.status, want) << "squirrel " << ::testing::PrintToString(args) << "\nstdout: " << r.out
                              << "\nstderr: " << r.err;
    return r;
  }
  CliResult ok(const std::vector<std::string>& args) const { return expect(0, args); }

  // The command with --json, parsed (exit status `want`).
  nlohmann::json json(const std::vector<std::string>& args, int want = 0) const {
    auto all = args;
    all.push_back("--json");
    auto r = expect(want, all);
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON from " << ::testing::PrintToString(all) << ": " << r.out << "\n" << r.err;
      return nlohmann::json::object();
    }
  }

  // The index status of the live row at `rel` (`query <full path>`).
  std::string status_of(const std::string& rel) const {
    return json({"query", vol(rel).string()}).value("status", std::string("(none)"));
  }

  // Every run, oldest first.
  nlohmann::json runs() const {
    auto all = json({"runs", "--limit", "1000000"});
    std::reverse(all.begin(), all.end());
    return all;
  }
};

// Regular files under `root` (never through a symlink), relative path ->
// BLAKE3 hex; names starting with one of `skip` at any level are left out.
inline std::map<std::string, std::string> file_hashes(const fs::path& root, const std::set<std::string>& skip = {}) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(root, ec))) return out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    auto name = it->path().filename().string();
    if (std::any_of(skip.begin(), skip.end(), [&](const std::string& s) { return name.rfind(s, 0) == 0; })) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    out[fs::relative(it->path(), root).generic_string()] = to_hex(blake3(read_file(it->path())));
  }
  return out;
}

// The user's files of a volume or of its mirror: everything but squirrel's
// own reserved names.
inline std::map<std::string, std::string> user_files(const fs::path& root) {
  return file_hashes(root, {".squirrel-"});
}

// Copies a tree exactly: files keep their mtimes, symlinks stay symlinks.
inline void copy_tree_exact(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    auto target = to / fs::relative(it->path(), from);
    if (it->is_symlink()) fs::copy_symlink(it->path(), target);
    else if (it->is_directory()) fs::create_directories(target);
    else {
      fs::copy_file(it->path(), target);
      fs::last_write_time(target, fs::last_write_time(it->path()));
    }
  }
}

// Rewrites a file with other bytes of the same size and puts its mtime
// back, so only a content hash can tell.
inline void rewrite_same_size_and_mtime(const fs::path& p, const std::string& text) {
  auto old = fs::last_write_time(p);
  ASSERT_EQ(read_file(p).size(), text.size()) << p;
  write_file(p, text);
  fs::last_write_time(p, old);
}

// Every row of every table except the run history, read-only: what a
// refused command must leave exactly as it was.
inline std::vector<std::vector<store::Value>> db_state(const fs::path& db_path) {
  auto db = store::Db::open(db_path, {false, true});
  std::vector<std::vector<store::Value>> out;
  for (const auto& t : db.query_rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                     "('runs', 'runs_audit') AND name NOT LIKE 'sqlite_%' ORDER BY name")) {
    auto name = std::get<std::string>(t[0]);
    auto rows = db.query_rows("SELECT '" + name + "', * FROM \"" + name + "\"");
    std::sort(rows.begin(), rows.end());
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

// Pseudo-random bytes (every byte value occurs), reproducible from `seed`.
inline std::string noise(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

}  // namespace sq::test
