// The strict TOML reader: typed getters that remember which keys were read,
// so anything left over is an unknown key reported with its own line.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "config/loader.hpp"
#include "core/error.hpp"
#include "core/text.hpp"

namespace sq::config::detail {

namespace {

int source_line(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

bool bare_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

const char* rule_text(DurationRule rule) {
  switch (rule) {
    case DurationRule::cadence: return "at least 1s";
    case DurationRule::positive: return "greater than zero";
    case DurationRule::non_negative: return "zero or more";
  }
  return "";
}

bool meets(DurationRule rule, std::int64_t ns) {
  switch (rule) {
    case DurationRule::cadence: return ns >= 1000000000LL;
    case DurationRule::positive: return ns > 0;
    case DurationRule::non_negative: return ns >= 0;
  }
  return false;
}

}  // namespace

std::optional<std::int64_t> checked_duration_ns(std::string_view text) {
  try {
    return parse_duration_ns(text);
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

std::optional<std::int64_t> checked_size_bytes(std::string_view text) {
  try {
    return parse_size_bytes(text);
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

void fail_at(std::string_view file, int line, std::string_view key_path, std::string_view problem,
             std::string_view todo) {
  throw Error(ErrorKind::config,
              fmt::format("{}:{}: {}: {} — {}", escape_for_display(file), line, key_path, problem, todo));
}

std::string key_segment(std::string_view key) {
  if (!key.empty() && std::all_of(key.begin(), key.end(), bare_key_char)) return std::string(key);
  return quote_text(key);
}

std::string quote_text(std::string_view text) {
  std::string escaped = escape_for_display(text);
  std::string out = "\"";
  for (char c : escaped) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

Section::Section(const std::string& file, const toml::table& table, std::string path)
    : file_(&file), table_(&table), path_(std::move(path)) {}

int Section::line() const {
  int line = source_line(*table_);
  if (line > 0) return line;
  // A table created only by dotted keys may carry no position of its own.
  for (auto&& [key, node] : *table_)
    if (source_line(node) > 0) return source_line(node);
  return 1;
}

int Section::line_of(std::string_view key) const {
  const toml::node* node = table_->get(key);
  return node && source_line(*node) > 0 ? source_line(*node) : line();
}

std::string Section::key_path(std::string_view key) const {
  return path_.empty() ? key_segment(key) : path_ + "." + key_segment(key);
}

void Section::fail(std::string_view key, std::string_view problem, std::string_view todo) const {
  fail_at(*file_, line_of(key), key_path(key), problem, todo);
}

void Section::fail_here(std::string_view problem, std::string_view todo) const {
  fail_at(*file_, line(), path_.empty() ? "(top level)" : path_, problem, todo);
}

const toml::node* Section::take(std::string_view key) {
  const toml::node* node = table_->get(key);
  if (node) taken_.emplace(key);
  return node;
}

void Section::wrong_type(std::string_view key, const toml::node& node, std::string_view expected) const {
  fail(key, fmt::format("expected {}, found {}", expected, type_name(node)), fmt::format("write {} instead", expected));
}

std::optional<std::string> Section::string(std::string_view key) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  if (!node->is_string()) wrong_type(key, *node, "a quoted string");
  return node->as_string()->get();
}

// The reference writes every optional key as a plain string whose zero
// value means "not set", so configs written for it say `dir = ""`.
std::optional<std::string> Section::optional_string(std::string_view key) {
  auto value = string(key);
  if (value && value->empty()) return std::nullopt;
  return value;
}

std::string Section::required_string(std::string_view key, std::string_view example) {
  auto value = string(key);
  if (!value)
    fail_at(*file_, line(), key_path(key), "missing required key",
            fmt::format("add {} = {}", key_segment(key), example));
  if (value->empty()) fail(key, "is empty", fmt::format("set it, for example {} = {}", key_segment(key), example));
  return *value;
}

std::optional<std::string> Section::choice(std::string_view key, const std::vector<std::string_view>& allowed) {
  auto value = optional_string(key);
  if (!value) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *value) == allowed.end())
    fail(key, fmt::format("{} is not allowed", quote_text(*value)),
         fmt::format("use one of: {}", fmt::join(allowed, ", ")));
  return value;
}

std::optional<bool> Section::boolean(std::string_view key) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  if (!node->is_boolean()) wrong_type(key, *node, "true or false");
  return node->as_boolean()->get();
}

std::optional<std::int64_t> Section::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  if (!node->is_integer()) wrong_type(key, *node, "a whole number without quotes");
  std::int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    std::string range = max >= std::numeric_limits<int>::max() ? fmt::format("of at least {}", min)
                                                               : fmt::format("from {} to {}", min, max);
    fail(key, fmt::format("{} is out of range", value), fmt::format("use a number {}", range));
  }
  return value;
}

// The reference reads these keys into a string field too, so "2222" is as
// good as 2222 there; "" means unset like any other empty optional string.
std::optional<std::int64_t> Section::integer_or_digits(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node* node = table_->get(key);
  if (!node || !node->is_string()) return integer(key, min, max);
  auto text = optional_string(key);
  if (!text) return std::nullopt;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  bool digits = text->size() <= 18 && std::all_of(text->begin(), text->end(), digit);
  if (!digits) fail(key, fmt::format("{} is not a whole number", quote_text(*text)), "write digits only, such as 2222");
  std::int64_t value = std::stoll(*text);
  if (value < min || value > max)
    fail(key, fmt::format("{} is out of range", value), fmt::format("use a number from {} to {}", min, max));
  return value;
}

std::optional<double> Section::number(std::string_view key) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  if (node->is_integer()) return static_cast<double>(node->as_integer()->get());
  if (node->is_string()) return number_from_text(key);
  if (!node->is_floating_point()) wrong_type(key, *node, "a number such as 10 or 2.5");
  return node->as_floating_point()->get();
}

std::optional<double> Section::number_from_text(std::string_view key) {
  auto text = optional_string(key);
  if (!text) return std::nullopt;
  const char* begin = text->c_str();
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(begin, &end);
  bool plain = !text->empty() && (std::isdigit(static_cast<unsigned char>(text->front())) || text->front() == '.');
  if (!plain || end != begin + text->size() || errno == ERANGE || !std::isfinite(value))
    fail(key, fmt::format("{} is not a number", quote_text(*text)), "write a number such as 10 or 2.5");
  return value;
}

std::optional<std::vector<Section::ListItem>> Section::string_list(std::string_view key) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  const toml::array* array = node->as_array();
  if (!array) wrong_type(key, *node, "a list of quoted strings such as [\"a\", \"b\"]");
  std::vector<ListItem> items;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    std::string element_path = fmt::format("{}[{}]", key_path(key), i);
    int element_line = source_line(element) > 0 ? source_line(element) : line_of(key);
    if (!element.is_string())
      fail_at(*file_, element_line, element_path, fmt::format("expected a quoted string, found {}", type_name(element)),
              "write every element as a quoted string");
    items.push_back({element.as_string()->get(), element_line, element_path});
  }
  return items;
}

std::optional<std::int64_t> Section::duration(std::string_view key, DurationRule rule) {
  auto text = optional_string(key);
  if (!text) return std::nullopt;
  auto ns = checked_duration_ns(*text);
  if (!ns)
    fail(key, fmt::format("{} is not a duration", quote_text(*text)),
         "write a duration such as \"90m\", \"6h\" or \"7d\" (units ns, us, ms, s, m, h, d)");
  if (!meets(rule, *ns))
    fail(key, fmt::format("{} is too short", quote_text(*text)), fmt::format("use a duration {}", rule_text(rule)));
  return ns;
}

std::optional<std::int64_t> Section::size(std::string_view key) {
  auto text = optional_string(key);
  if (!text) return std::nullopt;
  auto bytes = checked_size_bytes(*text);
  if (!bytes)
    fail(key, fmt::format("{} is not a size", quote_text(*text)), "write a size such as \"32MiB\" or \"1GB\"");
  if (*bytes <= 0) fail(key, "must be greater than zero", "use a size such as \"32MiB\"");
  return bytes;
}

// An empty literal of an optional secret means "not set", as in the
// reference; a required one (and any { env } form) must hold a secret.
std::optional<std::string> Section::secret(std::string_view key, Need need) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  if (const toml::table* env_table = node->as_table()) return secret_from_env(key, *env_table);
  if (!node->is_string()) wrong_type(key, *node, "a quoted string or { env = \"VAR\" }");
  std::string value = node->as_string()->get();
  if (value.empty() && need == Need::optional) return std::nullopt;
  if (value.empty()) fail(key, "secret is empty", "set the secret or read it with { env = \"VAR\" }");
  if (literal_secrets_) literal_secrets_->push_back(key_path(key));
  return value;
}

std::string Section::secret_from_env(std::string_view key, const toml::table& env_table) {
  Section env(*file_, env_table, key_path(key));
  auto variable = env.string("env");
  env.reject_unknown([](std::string_view) {
    return std::optional<Problem>(Problem{"unknown key", "a secret table may hold only env; remove it"});
  });
  if (!variable) fail(key, "secret table has no env key", "write { env = \"VAR_NAME\" }");
  if (variable->empty()) env.fail("env", "is empty", "name the environment variable that holds the secret");
  const char* value = std::getenv(variable->c_str());
  std::string shown = escape_for_display(*variable);
  if (!value)
    fail(key, fmt::format("environment variable {} is not set", shown),
         fmt::format("export {} before running squirrel", shown));
  if (!*value)
    fail(key, fmt::format("environment variable {} is empty", shown), fmt::format("put the secret in {}", shown));
  return value;
}

std::optional<std::filesystem::path> Section::path_value(std::string_view key) {
  auto text = optional_string(key);
  if (!text) return std::nullopt;
  std::filesystem::path expanded;
  if (auto problem = expand_path_problem(*text, expanded)) fail(key, problem->what, problem->todo);
  return expanded;
}

std::optional<Section> Section::table(std::string_view key) {
  const toml::node* node = take(key);
  if (!node) return std::nullopt;
  const toml::table* child = node->as_table();
  if (!child) wrong_type(key, *node, fmt::format("a table such as [{}]", key_path(key)));
  Section section(*file_, *child, key_path(key));
  section.literal_secrets_ = literal_secrets_;
  return section;
}

std::vector<std::pair<std::string, Section>> Section::named_tables() {
  std::vector<std::pair<std::string, Section>> out;
  for (auto&& [key, node] : *table_) {
    std::string name(key.str());
    if (!valid_name(name))
      fail(name, "invalid name",
           "use only letters, digits, '_' and '-', starting with a letter or digit (names become folder names)");
    out.emplace_back(name, *table(name));
  }
  return out;
}

void Section::reject_unknown(const UnknownHint& hint) const {
  const toml::node* first = nullptr;
  std::string first_key;
  for (auto&& [key, node] : *table_) {
    if (taken_.count(key.str())) continue;
    if (!first || source_line(node) < source_line(*first)) {
      first = &node;
      first_key = std::string(key.str());
    }
  }
  if (!first) return;
  std::optional<Problem> explained = hint ? hint(first_key) : std::nullopt;
  if (explained) fail(first_key, explained->what, explained->todo);
  fail(first_key, "unknown key", "remove it or check the spelling");
}

}  // namespace sq::config::detail
