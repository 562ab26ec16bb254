#pragma once
// What every command shares: the global flags, the lazily loaded config and
// the lazily opened store, and the helpers that print.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "store/store.hpp"

namespace sq::cli {

class Context {
 public:
  std::string config_flag;  // --config
  std::string db_flag;      // --db
  int exit_code = 0;

  std::filesystem::path config_path() const;
  // Loads the config; a missing file is an error.
  const config::Config& config();
  // Loads the config when present. A missing default file is tolerated,
  // a missing explicit --config is not.
  const config::Config* config_if_present();
  std::filesystem::path db_path();
  // Opens (creating and migrating when needed) the index database.
  store::Store& store();
  // Opens an existing database; a missing one is an error (read-only questions).
  store::Store& existing_store();
  bool db_exists();
  // Closes the store so its files can be replaced (db restore).
  void close_store() { store_.reset(); }
  // A throwaway database for a dry run when none exists yet: nothing is
  // created at the real path.
  store::Store& scratch_store();

 private:
  std::optional<config::Config> config_;
  bool config_probed_ = false;
  std::unique_ptr<store::Store> store_;
  std::filesystem::path scratch_dir_;

 public:
  ~Context();

 private:
  store::Store& open_store(bool create);
};

using Register = void (*)(CLI::App& app, Context& ctx);

// One per command source file.
void add_version_command(CLI::App& app, Context& ctx);
void add_runs_command(CLI::App& app, Context& ctx);
void add_hooks_command(CLI::App& app, Context& ctx);
void add_config_command(CLI::App& app, Context& ctx);
void add_db_command(CLI::App& app, Context& ctx);
void add_index_command(CLI::App& app, Context& ctx);
void add_sync_command(CLI::App& app, Context& ctx);
void add_backup_command(CLI::App& app, Context& ctx);
void add_init_command(CLI::App& app, Context& ctx);
void add_verify_command(CLI::App& app, Context& ctx);
void add_offload_command(CLI::App& app, Context& ctx);
void add_restore_command(CLI::App& app, Context& ctx);
void add_recover_command(CLI::App& app, Context& ctx);
void add_help_command(CLI::App& app, Context& ctx);
void add_completion_command(CLI::App& app, Context& ctx);
void add_status_command(CLI::App& app, Context& ctx);
void add_destination_command(CLI::App& app, Context& ctx);
void add_audit_command(CLI::App& app, Context& ctx);
void add_query_command(CLI::App& app, Context& ctx);
void add_volumes_command(CLI::App& app, Context& ctx);
void add_volumes_move_command(CLI::App& volumes, Context& ctx);
void add_volumes_adopt_command(CLI::App& volumes, Context& ctx);
void add_volumes_forget_command(CLI::App& volumes, Context& ctx);

}  // namespace sq::cli
