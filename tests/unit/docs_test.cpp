// The docs cannot drift from the program: every command, subcommand, flag
// and argument that `squirrel --help` shows must be in docs/cli.md, every
// `## squirrel X` heading there must name a real command, and every config
// key the loader reads must be in docs/configuration.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "help_util.hpp"

namespace {

namespace fs = std::filesystem;
using sq::test::commands;
using sq::test::HelpInfo;
using sq::test::parse_help;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- reading docs/cli.md --------------------------------------------------------

// `## squirrel <path>` heading -> the text up to the next `## ` heading.
std::map<std::string, std::string> command_sections(const std::string& doc) {
  std::map<std::string, std::string> sections;
  std::string* current = nullptr;
  std::istringstream in(doc);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) {
      current = nullptr;
      std::string title = line.substr(3);
      while (!title.empty() && title.back() == ' ') title.pop_back();
      if (title == "squirrel") current = &sections[""];
      else if (title.rfind("squirrel ", 0) == 0) current = &sections[title.substr(9)];
      continue;
    }
    if (current) *current += line + "\n";
  }
  return sections;
}

// A flag counts as documented when it opens a code span: `--limit` or
// `--limit N` or `--progress=false`.
bool mentions_flag(const std::string& text, const std::string& flag) {
  const std::string needle = "`" + flag;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    char next = pos + needle.size() < text.size() ? text[pos + needle.size()] : '\0';
    if (next == '`' || next == ' ' || next == '=') return true;
  }
  return false;
}

std::string sub_label(const std::string& path) { return path.empty() ? "squirrel" : "squirrel " + path; }

// Everything the help shows that the doc does not document.
std::vector<std::string> undocumented(const std::vector<sq::test::Command>& cmds, const std::string& doc) {
  std::vector<std::string> problems;
  auto sections = command_sections(doc);
  for (const auto& c : cmds) {
    if (c.path.empty()) {  // global flags: anywhere in the doc
      for (const auto& o : c.help.options)
        if (o != "-h" && o != "--help" && !mentions_flag(doc, o)) problems.push_back("global flag " + o);
      continue;
    }
    auto it = sections.find(c.path);
    if (it == sections.end()) {
      problems.push_back("no heading `## " + sub_label(c.path) + "`");
      continue;
    }
    for (const auto& o : c.help.options)
      if (o != "-h" && o != "--help" && !mentions_flag(it->second, o))
        problems.push_back(sub_label(c.path) + ": flag " + o);
    for (const auto& p : c.help.positionals)
      if (it->second.find("<" + p + ">") == std::string::npos)
        problems.push_back(sub_label(c.path) + ": argument <" + p + ">");
  }
  return problems;
}

// `## squirrel X` headings whose X is not a command.
std::vector<std::string> phantom_headings(const std::vector<sq::test::Command>& cmds, const std::string& doc) {
  std::set<std::string> real;
  for (const auto& c : cmds) real.insert(c.path);
  std::vector<std::string> problems;
  for (const auto& [path, body] : command_sections(doc))
    if (!real.count(path)) problems.push_back("## " + sub_label(path));
  return problems;
}

std::string cli_doc() { return sq::test::read_file(sq::test::source_dir() / "docs" / "cli.md"); }

// ---- CLI tests ---------------------------------------------------------------------

TEST(DocsTest, HelpParserReadsCli11Sections) {
  const std::string help =
      "Walk a volume\nUsage: squirrel index [OPTIONS] volume\n\nPositionals:\n"
      "  volume TEXT REQUIRED        Volume name\n\nOptions:\n"
      "  -h,--help                   Print this help message and exit\n"
      "  --a-very-long-option-name-that-wraps TEXT\n                              described here\n"
      "  -P,--progress{false}        Show progress\n\nSubcommands:\n  fail                        Mark\n";
  auto info = parse_help(help);
  EXPECT_EQ(info.positionals, (std::vector<std::string>{"volume"}));
  EXPECT_EQ(info.options,
            (std::vector<std::string>{"-h", "--help", "--a-very-long-option-name-that-wraps", "-P", "--progress"}));
  EXPECT_EQ(info.subcommands, (std::vector<std::string>{"fail"}));
}

TEST(DocsTest, EnumerationFindsTheKnownCommandsAndFlags) {
  std::map<std::string, HelpInfo> by_path;
  for (const auto& c : commands()) by_path[c.path] = c.help;
  for (const char* p : {"", "index", "audit", "query", "runs", "runs fail", "db", "db backup", "db restore",
                        "config check", "volumes", "version", "hooks"})
    EXPECT_TRUE(by_path.count(p)) << "missing command: " << p;
  EXPECT_THAT(by_path[""].options, Contains("--config"));
  EXPECT_THAT(by_path[""].options, Contains("--db"));
  EXPECT_THAT(by_path["index"].options, Contains("-P"));
  EXPECT_THAT(by_path["index"].options, Contains("--dry-run"));
  EXPECT_THAT(by_path["index"].positionals, Contains("volume"));
  EXPECT_THAT(by_path["db restore"].positionals, Contains("snapshot"));
}

TEST(DocsTest, EveryCommandFlagAndArgumentIsInCliMd) {
  EXPECT_THAT(undocumented(commands(), cli_doc()), IsEmpty());
}

TEST(DocsTest, EveryCliMdHeadingNamesARealCommand) {
  EXPECT_THAT(phantom_headings(commands(), cli_doc()), IsEmpty());
}

// The checkers themselves must be able to fail.
TEST(DocsTest, CheckersCatchOmissionsAndPhantoms) {
  auto doc = cli_doc();
  auto without_shallow = std::regex_replace(doc, std::regex("`--shallow`"), "shallow");
  EXPECT_THAT(undocumented(commands(), without_shallow), Contains("squirrel index: flag --shallow"));
  auto without_heading = std::regex_replace(doc, std::regex("## squirrel db check\n"), "## Checking\n");
  EXPECT_THAT(undocumented(commands(), without_heading), Contains("no heading `## squirrel db check`"));
  auto without_config = std::regex_replace(doc, std::regex("`--config"), "config");
  EXPECT_THAT(undocumented(commands(), without_config), Contains("global flag --config"));
  auto without_arg = std::regex_replace(doc, std::regex("<snapshot>"), "SNAPSHOT");
  EXPECT_THAT(undocumented(commands(), without_arg), Contains("squirrel db restore: argument <snapshot>"));
  EXPECT_THAT(phantom_headings(commands(), doc + "\n## squirrel no-such-command\n"),
              Contains("## squirrel no-such-command"));
}

// ---- config keys -----------------------------------------------------------------

struct ConfigKeys {
  std::set<std::string> scalars;  // read as values
  std::set<std::string> tables;   // read as tables ([volumes.<name>.hook] ...)
};

// Every key the loader reads: `s.string("key")`, `auth->secret("bearer")`,
// `parse_db_path(s, "db")`, `parse_named(root, "volumes", ...)`, a
// `std::string_view key = "..."` variable, and `for (... key : {"a", "b"})`.
ConfigKeys extract_config_keys(const std::string& source) {
  static const std::regex reader(
      R"re((?:\.|->)\s*(string|optional_string|required_string|choice|boolean|integer_or_digits|integer|number|string_list|duration|size|secret|path_value|table|has|fail|line_of|key_path)\(\s*"([^"]+)")re");
  static const std::regex helper(R"re(\b(parse_db_path|parse_named)\(\s*\w+\s*,\s*"([^"]+)")re");
  static const std::regex variable(R"re(\bstd::string_view\s+key\s*=\s*"([^"]+)")re");
  static const std::regex loop(R"re(\bkey\s*:\s*\{([^}]*)\})re");
  static const std::regex literal(R"re("([^"]+)")re");
  static const std::regex key_shape("[a-z][a-z0-9_]*");
  ConfigKeys keys;
  auto add = [&](const std::string& k, bool table) {
    if (std::regex_match(k, key_shape)) (table ? keys.tables : keys.scalars).insert(k);
  };
  for (std::sregex_iterator it(source.begin(), source.end(), reader), end; it != end; ++it)
    add((*it)[2], (*it)[1] == "table");
  for (std::sregex_iterator it(source.begin(), source.end(), helper), end; it != end; ++it)
    add((*it)[2], (*it)[1] == "parse_named");
  for (std::sregex_iterator it(source.begin(), source.end(), variable), end; it != end; ++it) add((*it)[1], false);
  for (std::sregex_iterator it(source.begin(), source.end(), loop), end; it != end; ++it) {
    std::string list = (*it)[1];
    for (std::sregex_iterator l(list.begin(), list.end(), literal), lend; l != lend; ++l) add((*l)[1], false);
  }
  return keys;
}

std::string config_sources() {
  std::string all;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(sq::test::source_dir() / "src" / "config"))
    if (e.path().extension() == ".cpp") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) all += sq::test::read_file(f) + "\n";
  return all;
}

// Inline code spans of a markdown text, outside fenced blocks.
std::vector<std::string> code_spans(const std::string& doc) {
  std::vector<std::string> spans;
  bool fenced = false;
  std::istringstream in(doc);
  for (std::string line; std::getline(in, line);) {
    if (line.find("```") != std::string::npos) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    for (auto open = line.find('`'); open != std::string::npos; open = line.find('`', open + 1)) {
      auto close = line.find('`', open + 1);
      if (close == std::string::npos) break;
      spans.push_back(line.substr(open + 1, close - open - 1));
      open = close;
    }
  }
  return spans;
}

// `key`, or for a table also a segment of a `[a.b.key]` / `[a.key.<n>]` span.
bool documents_key(const std::vector<std::string>& spans, const std::string& key, bool table) {
  for (const auto& s : spans) {
    if (s == key || s.rfind(key + " ", 0) == 0 || s.rfind(key + "=", 0) == 0) return true;
    if (!table || s.size() < 2 || s.front() != '[' || s.back() != ']') continue;
    std::stringstream in(s.substr(1, s.size() - 2));
    for (std::string seg; std::getline(in, seg, '.');)
      if (seg == key) return true;
  }
  return false;
}

std::vector<std::string> undocumented_keys(const ConfigKeys& keys, const std::string& doc) {
  auto spans = code_spans(doc);
  std::vector<std::string> missing;
  for (const auto& k : keys.scalars)
    if (!documents_key(spans, k, keys.tables.count(k) > 0)) missing.push_back(k);
  for (const auto& k : keys.tables)
    if (!keys.scalars.count(k) && !documents_key(spans, k, true)) missing.push_back("[" + k + "]");
  return missing;
}

std::string config_doc() { return sq::test::read_file(sq::test::source_dir() / "docs" / "configuration.md"); }

TEST(DocsTest, ConfigKeyExtractionFindsTheLoadersKeys) {
  auto keys = extract_config_keys(config_sources());
  EXPECT_GT(keys.scalars.size() + keys.tables.size(), 40u);
  for (const char* k : {"db", "node_name", "path", "sync_to", "offload_max_evidence_age", "pack_threshold",
                        "zstd_level", "verify_files_percent", "env", "bearer", "cert_fingerprint", "cloud_keep"})
    EXPECT_TRUE(keys.scalars.count(k)) << k;
  for (const char* t : {"volumes", "destinations", "nodes", "agent", "backups", "hook", "crypt", "tls", "auth", "peers"})
    EXPECT_TRUE(keys.tables.count(t)) << t;
}

TEST(DocsTest, EveryConfigKeyIsInConfigurationMd) {
  auto keys = extract_config_keys(config_sources());
  ASSERT_GT(keys.scalars.size() + keys.tables.size(), 40u);
  EXPECT_THAT(undocumented_keys(keys, config_doc()), IsEmpty());
}

TEST(DocsTest, ConfigKeyCheckerCatchesAnUndocumentedKey) {
  auto keys = extract_config_keys(config_sources());
  auto doc = std::regex_replace(config_doc(), std::regex("`pack_size`"), "pack_size");
  EXPECT_THAT(undocumented_keys(keys, doc), Contains("pack_size"));
  auto no_hook = std::regex_replace(config_doc(), std::regex(R"(\.hook\])"), "]");
  EXPECT_THAT(undocumented_keys(keys, no_hook), Contains("[hook]"));
  EXPECT_THAT(undocumented_keys({{"no_such_key"}, {}}, config_doc()), Contains("no_such_key"));
}

}  // namespace
