#pragma once
// Helpers for end-to-end CLI tests: run the real squirrel binary with
// arguments, environment and working directory, capturing stdout, stderr
// and the exit status; a temp-dir fixture with a config and a volume; and a
// snapshot of a directory tree to prove a command changed nothing on disk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/hash.hpp"
#include "test_util.hpp"

namespace sq::test {

namespace fs = std::filesystem;

#ifndef SQUIRREL_BIN
#error "SQUIRREL_BIN must name the squirrel binary under test"
#endif
#ifndef SQUIRREL_SOURCE_DIR
#error "SQUIRREL_SOURCE_DIR must name the repository root"
#endif

inline fs::path squirrel_bin() { return SQUIRREL_BIN; }
inline fs::path source_dir() { return SQUIRREL_SOURCE_DIR; }

struct CliResult {
  int status = -1;  // exit status, or 128 + signal when killed
  std::string out;
  std::string err;

  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // Lines of stderr that start with "Error: ".
  std::vector<std::string> error_lines() const {
    std::vector<std::string> lines;
    for (auto& l : err_lines())
      if (l.rfind("Error: ", 0) == 0) lines.push_back(l);
    return lines;
  }
};

// What the child sees. The environment is built from scratch (never the
// test runner's), so a developer's real ~/.squirrel or $SQUIRREL_CONFIG can
// never leak in: HOME is always set, to `home` when given.
struct CliOptions {
  std::vector<std::pair<std::string, std::string>> env;  // extra NAME=VALUE entries
  fs::path cwd;                                          // empty: inherit
  fs::path home;                                         // empty: /nonexistent-squirrel-home
};

namespace detail {

inline std::vector<std::string> child_env(const CliOptions& o) {
  std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                               "HOME=" + (o.home.empty() ? std::string("/nonexistent-squirrel-home") : o.home.string())};
  // Sanitizer builds need their options in the child too.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR"})
    if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
  for (const auto& [k, v] : o.env) env.push_back(k + "=" + v);
  return env;
}

inline std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads both pipes until both reach EOF, so neither side can fill up and
// block the child.
inline void drain_pipes(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open_count = 2;
  char buf[65536];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("poll failed");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
        continue;
      }
      ::close(fds[i].fd);
      fds[i].fd = -1;
      --open_count;
    }
  }
}

inline int wait_child(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

inline pid_t spawn(const std::vector<std::string>& args, const CliOptions& o, int out_w, int err_w) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w, 2);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
  std::vector<std::string> argv{squirrel_bin().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto env = child_env(o);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, c_argv[0], &fa, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn failed: " + std::string(std::strerror(rc)));
  return pid;
}

}  // namespace detail

// Runs squirrel with `args` (argv[1..]) and returns what it printed.
inline CliResult run_cli(const std::vector<std::string>& args, const CliOptions& o = {}) {
  int out_p[2], err_p[2];
  if (::pipe2(out_p, O_CLOEXEC) != 0 || ::pipe2(err_p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = 0;
  try {
    pid = detail::spawn(args, o, out_p[1], err_p[1]);
  } catch (...) {
    for (int fd : {out_p[0], out_p[1], err_p[0], err_p[1]}) ::close(fd);
    throw;
  }
  ::close(out_p[1]);
  ::close(err_p[1]);
  CliResult r;
  detail::drain_pipes(out_p[0], err_p[0], r.out, r.err);
  r.status = detail::wait_child(pid);
  return r;
}

// ---- files ------------------------------------------------------------------

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// ---- tree snapshot ------------------------------------------------------------

struct TreeEntry {
  char type = '?';  // f file, d directory, l symlink, o other
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string hash;  // BLAKE3 hex of a file's bytes, or a symlink's target
  bool operator==(const TreeEntry&) const = default;
};
using TreeSnapshot = std::map<std::string, TreeEntry>;

inline TreeEntry tree_entry(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat failed: " + p.string());
  TreeEntry e;
  e.type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'o';
  e.size = static_cast<std::uintmax_t>(st.st_size);
  e.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (e.type == 'f') e.hash = to_hex(blake3(read_file(p)));
  if (e.type == 'l') e.hash = fs::read_symlink(p).string();
  return e;
}

// Every entry under `root` (and root itself as "."), never following
// symlinks: type, size, mtime and content hash.
inline TreeSnapshot snapshot_tree(const fs::path& root) {
  TreeSnapshot snap;
  snap["."] = tree_entry(root);
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    snap[fs::relative(it->path(), root).generic_string()] = tree_entry(it->path());
  return snap;
}

// A readable diff for assertion messages.
inline std::string describe_diff(const TreeSnapshot& before, const TreeSnapshot& after) {
  std::string out;
  for (const auto& [p, e] : before) {
    auto it = after.find(p);
    if (it == after.end()) out += "removed: " + p + "\n";
    else if (!(it->second == e)) out += "changed: " + p + "\n";
  }
  for (const auto& [p, e] : after)
    if (!before.count(p)) out += "added: " + p + "\n";
  return out;
}

// ---- a squirrel sandbox ---------------------------------------------------------

// A temp dir holding a HOME, one volume `photos` (dir vol/photos), a config
// at cfg/config.toml and a DB path at db/index.db (not created).
class CliSandbox {
 public:
  CliSandbox() {
    fs::create_directories(home());
    fs::create_directories(volume_dir());
    fs::create_directories(dir_ / "db");
    write_config();
  }
  const fs::path& root() const { return dir_.path(); }
  fs::path home() const { return dir_ / "home"; }
  fs::path volume_dir(const std::string& name = "photos") const { return dir_ / "vol" / name; }
  fs::path config_path() const { return dir_ / "cfg" / "config.toml"; }
  fs::path db_path() const { return dir_ / "db" / "index.db"; }
  fs::path marker() const { return volume_dir() / ".squirrel-volume"; }

  // [volumes.photos] at volume_dir(), plus any extra TOML.
  void write_config(const std::string& extra = "") const {
    write_file(config_path(), "[volumes.photos]\npath = \"" + volume_dir().string() + "\"\n" + extra);
  }
  void write_config_raw(const std::string& text) const { write_file(config_path(), text); }
  void put(const std::string& rel, const std::string& text) const { write_file(volume_dir() / rel, text); }

  // `--config X --db Y`
  std::vector<std::string> global_args() const {
    return {"--config", config_path().string(), "--db", db_path().string()};
  }
  CliOptions options() const { return CliOptions{{}, root(), home()}; }

  // squirrel --config X --db Y <args...>
  CliResult run(const std::vector<std::string>& args) const {
    auto all = global_args();
    all.insert(all.end(), args.begin(), args.end());
    return run_cli(all, options());
  }
  // squirrel <args...> with no global flags (HOME is still the sandbox's).
  CliResult run_bare(const std::vector<std::string>& args, const CliOptions* o = nullptr) const {
    return run_cli(args, o ? *o : options());
  }

 private:
  TempDir dir_;
};

}  // namespace sq::test
