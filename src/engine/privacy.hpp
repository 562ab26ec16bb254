#pragma once
// Private by default. The index names every file of a person's volumes and
// its hash, and a config may hold passwords: neither is for other accounts
// on the machine. squirrel creates its own files owner-only
// (core/private_files.hpp); these checks find the ones that are readable by
// group or others anyway (made by an older squirrel, by hand, by another
// tool) and say how to close them. They change no mode: a person may have
// chosen it, so they are told, not overruled. `config check` and `status`
// show the warnings.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace sq::engine {

// One line when the database, or its -wal or -shm, is readable by group or
// others; nothing when it is private or does not exist.
std::optional<std::string> exposed_database_warning(const std::filesystem::path& db);

// One line when the config holds secrets written into it (not read with
// { env = "VAR" }) and is readable by group or others, as OpenSSH warns of
// a key file.
std::optional<std::string> exposed_config_warning(const config::Config& cfg);

// Both, config first.
std::vector<std::string> privacy_warnings(const config::Config& cfg, const std::filesystem::path& db);

}  // namespace sq::engine
