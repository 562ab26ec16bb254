#pragma once
// Reading the fenced blocks of the docs and comparing a block of example
// output with what the program really printed (doc_examples_test.cpp).
// Both sides are normalised first, so that what differs from run to run
// (paths, times, sizes, counts, hashes) cannot fail a test, while a renamed
// field, a changed word or a missing column still does.
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cli_util.hpp"

namespace sq::test {

// One fenced block of a markdown file.
struct DocBlock {
  std::string file;                // "cli.md"
  int line = 0;                    // 1-based line of the opening fence
  std::string lang;                // "json", "toml", "" ...
  std::string marker;              // id of a `<!-- example: id -->` right above, or ""
  std::vector<std::string> lines;  // the block's lines, fence indentation removed
  std::string where() const { return file + ":" + std::to_string(line); }
};

inline std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// `<!-- example: id -->` -> "id"; any other line -> "".
inline std::string example_marker(const std::string& line) {
  static const std::regex marker(R"(^\s*<!--\s*example:\s*(\S+)\s*-->\s*$)");
  std::smatch m;
  return std::regex_match(line, m, marker) ? m[1].str() : "";
}

inline std::vector<DocBlock> fenced_blocks(const std::string& file, const std::string& text) {
  std::vector<DocBlock> blocks;
  auto lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto fence = lines[i].find("```");
    if (fence == std::string::npos || trim(lines[i].substr(0, fence)) != "") continue;
    DocBlock b{file, static_cast<int>(i + 1), trim(lines[i].substr(fence + 3)), "", {}};
    if (i > 0) b.marker = example_marker(lines[i - 1]);
    for (++i; i < lines.size() && trim(lines[i]) != "```"; ++i)
      b.lines.push_back(lines[i].size() >= fence ? lines[i].substr(fence) : trim(lines[i]));
    blocks.push_back(b);
  }
  return blocks;
}

inline bool every_line_starts_with(const DocBlock& b, const std::string& prefix) {
  for (const auto& l : b.lines)
    if (trim(l) != "" && trim(l).rfind(prefix, 0) != 0) return false;
  return true;
}

// What a reader takes for the output of a command: anything but a config
// file (toml), a synopsis (only `squirrel ...` lines) or a list of commands
// to type (only `$ ...` lines). Deliberately wide, so a new output example
// cannot slip in unmarked.
inline bool is_output_example(const DocBlock& b) {
  if (b.lang == "toml") return false;
  return !every_line_starts_with(b, "squirrel ") && !every_line_starts_with(b, "$ ");
}

// ---- normalisation ----------------------------------------------------------------

// Doc-only: a `<placeholder>` and an abbreviated hash (`5f0c…`) stand for
// anything.
inline std::string doc_wildcards(std::string s) {
  static const std::regex placeholder(R"(<[a-z][a-z0-9 _-]*>)");
  static const std::regex short_hash(R"(\b[0-9a-f]+…)");
  s = std::regex_replace(s, placeholder, "…");
  return std::regex_replace(s, short_hash, "…");
}

// What may differ between the doc's run and the test's, replaced by a
// placeholder of its kind, in an order where a wider pattern goes first.
inline std::string normalise(const std::string& line) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(\s+)"), " "},
      {std::regex(R"((^|[\s("'`=])(~|/)[^\s"'`),;]*)"), "$1<path>"},
      {std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)"), "<time>"},
      {std::regex(R"(\d{8}T\d{6}\.\d{3}Z)"), "<time>"},
      {std::regex(R"(\b\d+(\.\d+)? ?(B|KiB|MiB|GiB|TiB)\b)"), "<size>"},
      {std::regex(R"(\b\d+(\.\d+)?(ns|us|ms|s|m|h|d)\b)"), "<dur>"},
      // A hash (whole or abbreviated) is a number here too: a count, an id
      // and a hash never share a column.
      {std::regex(R"(\b(?=[0-9a-f]*[0-9])[0-9a-f]+\b)"), "#"},
      {std::regex(R"(\d+)"), "#"},
  };
  // A command's `# comment` is for the reader, not the program.
  auto s = line.rfind("$ ", 0) == 0 ? line.substr(0, line.find(" #")) : line;
  for (const auto& [pattern, placeholder] : rules) s = std::regex_replace(s, pattern, placeholder);
  return trim(s);
}

// A normalised doc line as a pattern: `…` matches anything.
inline std::regex doc_line_pattern(const std::string& normalised_doc_line) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  auto escaped = std::regex_replace(normalised_doc_line, special, "\\$&");
  std::string pattern;
  for (std::size_t at = 0, next; at <= escaped.size(); at = next + std::string("…").size()) {
    next = escaped.find("…", at);
    pattern += escaped.substr(at, next == std::string::npos ? std::string::npos : next - at);
    if (next == std::string::npos) break;
    pattern += ".*";
  }
  return std::regex(pattern);
}

inline std::vector<std::string> without_trailing_blanks(std::vector<std::string> lines) {
  while (!lines.empty() && trim(lines.back()) == "") lines.pop_back();
  return lines;
}

// What one command printed. A terminal shows its stdout and stderr lines
// interleaved in an order the pipes of a test cannot see, so a doc block
// may interleave them in any order that keeps each stream's own.
struct Printed {
  std::vector<std::string> out, err;
};
// What a session printed, command after command.
using Session = std::vector<Printed>;

inline Session stdout_text(const std::string& text) { return {{without_trailing_blanks(split_lines(text)), {}}}; }
inline Session operator+(Session a, const Session& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Whether the doc's lines are the session's lines, one for one; within a
// command stdout and stderr may interleave, and a doc line that is only `…`
// stands for any number of lines.
class SessionMatcher {
 public:
  SessionMatcher(const std::vector<std::string>& doc, const Session& real) : real_(real) {
    for (const auto& d : doc) {
      auto n = normalise(doc_wildcards(d));
      skip_.push_back(n == "…");
      pattern_.push_back(doc_line_pattern(n));
    }
    for (auto& p : real_) {
      for (auto& l : p.out) l = normalise(l);
      for (auto& l : p.err) l = normalise(l);
    }
  }
  bool matches() { return from(0, 0, 0, 0); }

 private:
  Session real_;
  std::vector<bool> skip_;
  std::vector<std::regex> pattern_;
  std::map<std::tuple<std::size_t, std::size_t, std::size_t, std::size_t>, bool> memo_;

  // doc[i..] against command k from line jo of its stdout and je of its stderr.
  bool from(std::size_t i, std::size_t k, std::size_t jo, std::size_t je) {
    if (k == real_.size()) return i == skip_.size() || (skip_[i] && from(i + 1, k, 0, 0));
    const auto& p = real_[k];
    if (jo == p.out.size() && je == p.err.size() && from(i, k + 1, 0, 0)) return true;
    if (i == skip_.size()) return false;
    auto key = std::make_tuple(i, k, jo, je);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    bool ok = false;
    if (skip_[i]) {
      ok = from(i + 1, k, jo, je) || (jo < p.out.size() && from(i, k, jo + 1, je)) ||
           (je < p.err.size() && from(i, k, jo, je + 1));
    } else {
      ok = (jo < p.out.size() && std::regex_match(p.out[jo], pattern_[i]) && from(i + 1, k, jo + 1, je)) ||
           (je < p.err.size() && std::regex_match(p.err[je], pattern_[i]) && from(i + 1, k, jo, je + 1));
    }
    return memo_[key] = ok;
  }
};

// "" when the block's lines match `real`, else both sides for the message.
inline std::string compare_block(const DocBlock& b, const Session& real) {
  auto doc = without_trailing_blanks(b.lines);
  if (SessionMatcher(doc, real).matches()) return "";
  std::string msg = b.where() + " [" + b.marker + "] does not match the real output.\n--- doc (normalised):\n";
  for (const auto& l : doc) msg += "  " + normalise(doc_wildcards(l)) + "\n";
  msg += "--- real, command by command (2> for stderr):\n";
  for (const auto& p : real) {
    for (const auto& l : p.out) msg += "  " + l + "\n";
    for (const auto& l : p.err) msg += "  2> " + l + "\n";
  }
  return msg;
}

inline std::string compare_block(const DocBlock& b, const std::string& real_stdout) {
  return compare_block(b, stdout_text(real_stdout));
}

}  // namespace sq::test
