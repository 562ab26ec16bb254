// Public entry points of the config loader: reading the file, parsing the
// top level, and the path rules shared with the CLI.
#include "config/config.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "config/loader.hpp"
#include "core/error.hpp"
#include "core/text.hpp"

namespace sq::config {

using detail::quote_text;
using detail::Section;

Error unknown_volume(const std::string& name, const std::filesystem::path& config_file) {
  return Error(ErrorKind::not_found, fmt::format("unknown volume \"{}\" — declare it in {} (see `squirrel volumes`)",
                                                 escape_for_display(name), config_file.string()));
}

const Volume* Config::volume(const std::string& name) const {
  auto it = volumes.find(name);
  return it == volumes.end() ? nullptr : &it->second;
}

const Destination* Config::destination(const std::string& name) const {
  auto it = destinations.find(name);
  return it == destinations.end() ? nullptr : &it->second;
}

const Node* Config::node(const std::string& name) const {
  auto it = nodes.find(name);
  return it == nodes.end() ? nullptr : &it->second;
}

std::vector<std::string> Config::external_targets(const Volume& v) const {
  std::vector<std::string> out;
  for (const auto& t : v.offload_requires)
    if (!destination(t) && !node(t)) out.push_back(t);
  return out;
}

bool Destination::can_ever_gate_offload() const { return !(layout == "mirror" && crypt.has_value()); }

bool Destination::has_local_root() const {
  return type == "local" || type == "kopia" || (type == "restic" && root.starts_with("/"));
}

std::filesystem::path default_config_path() {
  const char* configured = std::getenv("SQUIRREL_CONFIG");
  if (configured && *configured) return expand_path(configured);
  return expand_path("~/.squirrel/config.toml");
}

std::filesystem::path expand_path(const std::string& text) {
  std::filesystem::path expanded;
  if (auto problem = detail::expand_path_problem(text, expanded))
    fail(ErrorKind::config, fmt::format("path {}: {} — {}", quote_text(text), problem->what, problem->todo));
  return expanded;
}

namespace detail {

std::optional<Problem> expand_path_problem(const std::string& text, std::filesystem::path& expanded) {
  if (text.find('\0') != std::string::npos) return Problem{"the path contains a NUL byte", "remove it"};
  std::string with_home = text;
  if (text == "~" || text.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (!home || !*home) return Problem{"cannot expand ~ because HOME is not set", "set HOME or write the full path"};
    with_home = std::string(home) + text.substr(1);
  } else if (text.starts_with("~")) {
    // ~user would need a password-database lookup; silently creating a
    // literal "~bob" folder under the working directory would be worse.
    return Problem{"~user paths are not supported", "write the full path"};
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(with_home, ec);
  if (ec) return Problem{"cannot be made absolute: " + ec.message(), "write an absolute path"};
  expanded = absolute.lexically_normal();
  // lexically_normal keeps a trailing slash; paths are compared as strings later.
  if (!expanded.has_filename() && expanded.has_relative_path()) expanded = expanded.parent_path();
  return std::nullopt;
}

std::optional<Problem> db_path_problem(std::string_view path) {
  const std::string todo = "write a plain file path such as \"~/.squirrel/index.db\"";
  if (path.empty()) return Problem{"the db path is empty", todo};
  if (path.find('\0') != std::string_view::npos) return Problem{"the db path contains a NUL byte", todo};
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  if (space(path.front()) || space(path.back()))
    return Problem{"the db path has leading or trailing whitespace", "remove the spaces around the path"};
  if (path.starts_with("file:")) return Problem{"the db path is a SQLite URI (file:)", todo};
  if (path.find("://") != std::string_view::npos) return Problem{"the db path looks like a URL", todo};
  if (path.find_first_of("?#") != std::string_view::npos)
    return Problem{"the db path contains '?' or '#', which SQLite reads as URI syntax",
                   "choose a file path without '?' and '#'"};
  return std::nullopt;
}

std::optional<std::filesystem::path> parse_db_path(Section& s, std::string_view key) {
  // Checked before ~ expansion so the message is about what the user wrote.
  auto text = s.optional_string(key);
  if (!text) return std::nullopt;
  if (auto problem = db_path_problem(*text)) s.fail(key, problem->what, problem->todo);
  return s.path_value(key);
}

}  // namespace detail

void validate_db_path(const std::string& path) {
  if (auto problem = detail::db_path_problem(path))
    fail(ErrorKind::config, fmt::format("db path {}: {} — {}", quote_text(path), problem->what, problem->todo));
}

namespace {

// toml++ already escapes what it quotes; only stray control bytes could
// still split the message.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

template <class Item, class ParseItem>
void parse_named(Section& root, std::string_view key, std::map<std::string, Item>& out, ParseItem parse_item) {
  auto collection = root.table(key);
  if (!collection) return;
  for (auto& [name, section] : collection->named_tables()) out.emplace(name, parse_item(section, name));
}

void parse_top_level(Section& root, Config& cfg) {
  cfg.db = detail::parse_db_path(root, "db");
  if (auto node_name = root.optional_string("node_name")) {
    if (!valid_name(*node_name))
      root.fail("node_name", fmt::format("{} is not a valid name", quote_text(*node_name)),
                "use only letters, digits, '_' and '-', starting with a letter or digit");
    cfg.node_name = node_name;
  }
  // Volumes refer to destinations and nodes, so those are read first.
  parse_named(root, "destinations", cfg.destinations,
              [](Section& s, const std::string& name) { return detail::parse_destination(s, name); });
  parse_named(root, "nodes", cfg.nodes,
              [](Section& s, const std::string& name) { return detail::parse_node(s, name); });
  parse_named(root, "volumes", cfg.volumes,
              [&cfg](Section& s, const std::string& name) { return detail::parse_volume(s, name, cfg); });
  detail::check_namespace(root.file(), cfg);
  detail::check_layout(root.file(), cfg);
  if (auto agent = root.table("agent")) cfg.agent = detail::parse_agent(*agent);
  if (auto backups = root.table("backups")) cfg.backups = detail::parse_backups(*backups);
  root.reject_unknown();
}

}  // namespace

Config parse(const std::string& toml_text, const std::filesystem::path& file_for_messages) {
  const std::string shown = file_for_messages.string();
  toml::table document;
  try {
    document = toml::parse(toml_text, std::string_view(shown));
  } catch (const toml::parse_error& e) {
    throw Error(ErrorKind::config,
                fmt::format("{}:{}:{}: {} — fix the TOML syntax", escape_for_display(shown), e.source().begin.line,
                            e.source().begin.column, one_line(e.description())));
  }
  Config cfg;
  std::error_code ec;
  cfg.file = std::filesystem::absolute(file_for_messages, ec).lexically_normal();
  if (ec) cfg.file = file_for_messages;
  Section root(shown, document, "");
  root.record_literal_secrets(cfg.literal_secrets);
  parse_top_level(root, cfg);
  return cfg;
}

namespace {

std::string read_config_file(const std::filesystem::path& file) {
  const std::string shown = escape_for_display(file.string());
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    fail(ErrorKind::config, fmt::format("no config at {} — create one (see docs/configuration.md)", shown));
  if (fd < 0)
    fail(ErrorKind::config,
         fmt::format("{} — check the path and its permissions", errno_message("cannot read config " + shown, errno)));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::config, fmt::format("config {} is a directory — point at the config.toml file inside it", shown));
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail(ErrorKind::config, fmt::format("{} — check the file", errno_message("cannot read config " + shown, err)));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

Config load(const std::filesystem::path& file) { return parse(read_config_file(file), file); }

}  // namespace sq::config
