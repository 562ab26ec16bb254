#pragma once
// Replacing the live index database with a snapshot file, shared by
// `db restore` and `recover`: never while another squirrel is recorded as
// running against it (unless forced), never keeping our own connection
// open across the swap, and never deleting the file it replaces.
#include <filesystem>
#include <string>

#include "cli/context.hpp"
#include "store/snapshots.hpp"

namespace sq::cli {

// `retry` is the command that repeats the replacement with --force, named
// in the refusal.
store::RestoreResult replace_database(Context& ctx, const std::filesystem::path& snapshot, bool force,
                                      const std::string& retry);

}  // namespace sq::cli
