#include "engine/privacy.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include "core/text.hpp"

namespace sq::engine {

namespace fs = std::filesystem;

namespace {

// The permission bits of a file that group or others may read; nothing when
// it is private or cannot be looked at (absent, say).
std::optional<mode_t> readable_by_others(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  if ((st.st_mode & (S_IRGRP | S_IROTH)) == 0) return std::nullopt;
  return st.st_mode & 07777;
}

std::string shown(const fs::path& path) { return escape_for_display(path.string()); }

// A path as a shell word, so the chmod in a message can be pasted.
std::string shell_word(const fs::path& path) {
  std::string text = shown(path);
  if (text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%") ==
      std::string::npos)
    return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::optional<std::string> exposed_database_warning(const fs::path& db) {
  auto mode = readable_by_others(db);
  std::string files;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path file = db.string() + suffix;
    if (readable_by_others(file)) files += " " + shell_word(file);
  }
  if (files.empty()) return std::nullopt;
  std::string what = mode ? fmt::format("index database {} is readable by other accounts (mode {:04o})", shown(db), *mode)
                          : fmt::format("the -wal or -shm file of index database {} is readable by other accounts",
                                        shown(db));
  return fmt::format("{}, and it names every file of your volumes — run `chmod 600{}`", what, files);
}

std::optional<std::string> exposed_config_warning(const config::Config& cfg) {
  if (cfg.literal_secrets.empty()) return std::nullopt;
  auto mode = readable_by_others(cfg.file);
  if (!mode) return std::nullopt;
  std::string keys;
  for (const auto& key : cfg.literal_secrets) keys += (keys.empty() ? "" : ", ") + key;
  return fmt::format("config {} holds secrets ({}) and is readable by other accounts (mode {:04o}) — run `chmod 600 "
                     "{}`, or read each secret with {{ env = \"VAR\" }}",
                     shown(cfg.file), keys, *mode, shell_word(cfg.file));
}

std::vector<std::string> privacy_warnings(const config::Config& cfg, const fs::path& db) {
  std::vector<std::string> out;
  if (auto w = exposed_config_warning(cfg)) out.push_back(*w);
  if (auto w = exposed_database_warning(db)) out.push_back(*w);
  return out;
}

}  // namespace sq::engine
