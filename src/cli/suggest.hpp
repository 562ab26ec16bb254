#pragma once
// "Did you mean": the command a mistyped word most likely meant.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace sq::cli {

// The subcommand of `parent` named exactly `name`; nullptr when none.
CLI::App* subcommand_named(CLI::App& parent, const std::string& name);

// The subcommand of `parent` closest to `word` (at most two edits away, or
// one it starts), as the user would type it; nullopt when none is close.
std::optional<std::string> closest_command(CLI::App& parent, const std::string& word);

// The one line for a word that names no command of `parent`.
std::string unknown_command_message(CLI::App& parent, const std::string& word);

}  // namespace sq::cli
