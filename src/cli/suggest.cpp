#include "cli/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/text.hpp"

namespace sq::cli {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string command_path(CLI::App& app) {
  std::string path;
  for (CLI::App* a = &app; a && a->get_parent(); a = a->get_parent()) path = a->get_name() + (path.empty() ? "" : " " + path);
  return "squirrel" + (path.empty() ? "" : " " + path);
}

}  // namespace

CLI::App* subcommand_named(CLI::App& parent, const std::string& name) {
  auto found = parent.get_subcommands([&name](CLI::App* sub) { return sub->get_name() == name; });
  return found.empty() ? nullptr : found.front();
}

std::optional<std::string> closest_command(CLI::App& parent, const std::string& word) {
  std::optional<std::string> best;
  std::size_t best_distance = 3;
  for (auto* sub : parent.get_subcommands([](CLI::App*) { return true; })) {
    const auto& name = sub->get_name();
    std::size_t d = name.starts_with(word) && word.size() >= 2 ? 1 : edit_distance(word, name);
    if (d < best_distance) {
      best_distance = d;
      best = command_path(*sub);
    }
  }
  return best;
}

std::string unknown_command_message(CLI::App& parent, const std::string& word) {
  auto guess = closest_command(parent, word);
  return fmt::format("unknown command \"{}\" — {}run `{} --help` for usage", escape_for_display(word),
                     guess ? fmt::format("did you mean `{}`? ", *guess) : "", command_path(parent));
}

}  // namespace sq::cli
