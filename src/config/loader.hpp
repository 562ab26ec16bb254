#pragma once
// Internal to src/config: a strict reader over one TOML table and the
// per-section parsers built on it. Nothing outside src/config includes this.
#include <toml++/toml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace sq::config::detail {

// Builds and throws "<file>:<line>: <key path>: <problem> — <todo>".
[[noreturn]] void fail_at(std::string_view file, int line, std::string_view key_path, std::string_view problem,
                          std::string_view todo);

// How a key appears in a dotted path: bare when TOML allows it, quoted and
// escaped otherwise, so a hostile key cannot break the one-line message.
std::string key_segment(std::string_view key);

// User text quoted for a message, with control bytes escaped.
std::string quote_text(std::string_view text);

// sq::parse_duration_ns / parse_size_bytes, except that a number too long
// for std::stod (which throws std::out_of_range there) is malformed too.
std::optional<std::int64_t> checked_duration_ns(std::string_view text);
std::optional<std::int64_t> checked_size_bytes(std::string_view text);

enum class DurationRule {
  cadence,       // >= 1s: every schedule the agent runs
  positive,      // > 0: timeouts
  non_negative,  // >= 0: scan_interval, where 0 means "off"
};

// What is wrong with a value and what to do about it, so one check can feed
// both a located load error and a standalone one.
struct Problem {
  std::string what;
  std::string todo;
};
std::optional<Problem> db_path_problem(std::string_view path);
// The rules of expand_path; on success `expanded` holds the result.
std::optional<Problem> expand_path_problem(const std::string& text, std::filesystem::path& expanded);

// Only the keys a caller asks for are known; whatever remains when the
// caller is done is an unknown key, reported with its own line.
class Section {
 public:
  // Lets a caller explain why a key is unknown here (say, a key of another type).
  using UnknownHint = std::function<std::optional<Problem>(std::string_view key)>;

  Section(const std::string& file, const toml::table& table, std::string path);

  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }
  int line() const;
  int line_of(std::string_view key) const;
  std::string key_path(std::string_view key) const;
  bool has(std::string_view key) const { return table_->contains(key); }

  [[noreturn]] void fail(std::string_view key, std::string_view problem, std::string_view todo) const;
  [[noreturn]] void fail_here(std::string_view problem, std::string_view todo) const;

  std::optional<std::string> string(std::string_view key);
  // "" reads as absent: the reference's zero value for an optional key.
  std::optional<std::string> optional_string(std::string_view key);
  std::string required_string(std::string_view key, std::string_view example);
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string_view>& allowed);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  // A TOML integer, or a string of digits (the reference's string-typed keys).
  std::optional<std::int64_t> integer_or_digits(std::string_view key, std::int64_t min, std::int64_t max);
  // A TOML integer or float, or a string holding a plain decimal number.
  std::optional<double> number(std::string_view key);
  // Each element must be a string; its line and index are used in errors.
  struct ListItem {
    std::string value;
    int line;
    std::string key_path;
  };
  std::optional<std::vector<ListItem>> string_list(std::string_view key);
  // Durations and sizes are strings; "" reads as absent.
  std::optional<std::int64_t> duration(std::string_view key, DurationRule rule);
  std::optional<std::int64_t> size(std::string_view key);
  enum class Need { optional, required };
  std::optional<std::string> secret(std::string_view key, Need need = Need::optional);
  std::optional<std::filesystem::path> path_value(std::string_view key);
  std::optional<Section> table(std::string_view key);
  // Every entry must be a table with a valid name; used for volumes.X etc.
  std::vector<std::pair<std::string, Section>> named_tables();

  void reject_unknown(const UnknownHint& hint = {}) const;
  // Every secret given as a literal here or in a table beneath is listed
  // in `sink` by its key path.
  void record_literal_secrets(std::vector<std::string>& sink) { literal_secrets_ = &sink; }

 private:
  const toml::node* take(std::string_view key);
  [[noreturn]] void wrong_type(std::string_view key, const toml::node& node, std::string_view expected) const;
  std::string secret_from_env(std::string_view key, const toml::table& env_table);
  std::optional<double> number_from_text(std::string_view key);

  const std::string* file_;
  const toml::table* table_;
  std::string path_;
  std::set<std::string, std::less<>> taken_;
  std::vector<std::string>* literal_secrets_ = nullptr;
};

// A DB path key (top-level db, agent.db): the DB-path rule, then expansion.
std::optional<std::filesystem::path> parse_db_path(Section& s, std::string_view key);

Volume parse_volume(Section& s, const std::string& name, const Config& declared);
Destination parse_destination(Section& s, const std::string& name);
Node parse_node(Section& s, const std::string& name);
Agent parse_agent(Section& s);
Backups parse_backups(Section& s);

// Rules that need the whole file: one namespace, crypt overlay names.
void check_namespace(const std::string& file, const Config& cfg);
// Refuses the first layout clash on the configured (lexical) paths.
void check_layout(const std::string& file, const Config& cfg);

}  // namespace sq::config::detail
