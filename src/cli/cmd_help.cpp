// squirrel help [<command>...]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "cli/suggest.hpp"
#include "core/error.hpp"

namespace sq::cli {

void add_help_command(CLI::App& app, Context&) {
  auto words = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("help", "Print the help of a command (squirrel help db restore)");
  cmd->add_option("command", *words, "The command, with its subcommands");
  cmd->callback([&app, words] {
    CLI::App* at = &app;
    for (const auto& w : *words) {
      CLI::App* next = subcommand_named(*at, w);
      if (!next || w == "help") throw Error(ErrorKind::usage, unknown_command_message(*at, w));
      at = next;
    }
    // The same "Usage: squirrel db restore …" line that `--help` prints.
    std::string prefix;
    for (CLI::App* p = at->get_parent(); p; p = p->get_parent())
      prefix = p->get_name() + (prefix.empty() ? "" : " " + prefix);
    print(at == &app ? app.help() : at->help(prefix));
  });
}

}  // namespace sq::cli
