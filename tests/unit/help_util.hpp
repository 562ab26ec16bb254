#pragma once
// Reading `squirrel [command...] --help` (CLI11's layout) into the commands,
// flags and arguments the program really has: the docs tests compare the
// docs against it.
#include <deque>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_util.hpp"

namespace sq::test {

// ---- reading CLI11 help --------------------------------------------------------

struct HelpInfo {
  std::vector<std::string> options;      // every spelling: "-P", "--progress"
  std::vector<std::string> positionals;  // "volume"
  std::vector<std::string> subcommands;  // "fail"
};

// "-P,--progress" -> {"-P", "--progress"}; drops a "{default}" or "=x" tail.
inline std::vector<std::string> option_spellings(const std::string& token) {
  std::vector<std::string> out;
  std::stringstream in(token);
  for (std::string name; std::getline(in, name, ',');) {
    name = name.substr(0, name.find_first_of("{="));
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

// CLI11 prints unindented section titles ("Options:", "Positionals:",
// "Subcommands:") and one entry per line indented by exactly two spaces;
// wrapped descriptions are indented further and ignored.
inline HelpInfo parse_help(const std::string& help) {
  HelpInfo info;
  std::vector<std::string>* section = nullptr;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] != ' ') {
      section = line == "Options:"       ? &info.options
                : line == "Positionals:" ? &info.positionals
                : line == "Subcommands:" ? &info.subcommands
                                         : nullptr;
      continue;
    }
    if (!section || line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    std::string token = line.substr(2, line.find(' ', 2) - 2);
    if (section == &info.options)
      for (auto& s : option_spellings(token)) info.options.push_back(s);
    else
      section->push_back(token);
  }
  return info;
}

struct Command {
  std::string path;  // "" for the root, "db backup"
  HelpInfo help;
};

// Walks `squirrel [path...] --help` breadth first.
inline std::vector<Command> enumerate_commands() {
  std::vector<Command> out;
  std::deque<std::vector<std::string>> todo{{}};
  while (!todo.empty()) {
    auto words = todo.front();
    todo.pop_front();
    auto args = words;
    args.push_back("--help");
    auto r = run_cli(args);
    if (r.status != 0) throw std::runtime_error("squirrel --help failed for " + ::testing::PrintToString(words));
    std::string path;
    for (const auto& w : words) path += (path.empty() ? "" : " ") + w;
    out.push_back({path, parse_help(r.out)});
    for (const auto& sub : out.back().help.subcommands) {
      auto next = words;
      next.push_back(sub);
      todo.push_back(next);
    }
  }
  return out;
}

inline const std::vector<Command>& commands() {
  static const std::vector<Command> all = enumerate_commands();
  return all;
}

}  // namespace sq::test
