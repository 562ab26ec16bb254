// squirrel's command-line front end: parses flags, dispatches to one
// command per source file, and turns every error into one line on stderr.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/suggest.hpp"
#include "core/error.hpp"
#include "store/sql_trace.hpp"

namespace {

void build(CLI::App& app, sq::cli::Context& ctx) {
  app.name("squirrel");
  app.description("squirrel keeps your files safe across machines, disks, NAS and cloud storage — and proves it.");
  app.require_subcommand(0, 1);
  app.fallthrough();
  app.add_option("--config", ctx.config_flag, "Config file (default $SQUIRREL_CONFIG or ~/.squirrel/config.toml)");
  app.add_option("--db", ctx.db_flag, "Index database (default: config db, else ~/.squirrel/index.db)");
  for (auto reg : {sq::cli::add_version_command, sq::cli::add_runs_command, sq::cli::add_hooks_command,
                   sq::cli::add_config_command, sq::cli::add_db_command, sq::cli::add_index_command, sq::cli::add_sync_command,
                   sq::cli::add_backup_command, sq::cli::add_init_command,
                   sq::cli::add_verify_command, sq::cli::add_offload_command, sq::cli::add_restore_command, sq::cli::add_recover_command,
                   sq::cli::add_status_command, sq::cli::add_destination_command,
                   sq::cli::add_audit_command, sq::cli::add_query_command, sq::cli::add_volumes_command,
                   sq::cli::add_help_command, sq::cli::add_completion_command})
    reg(app, ctx);
  app.set_version_flag("--version", fmt::format("squirrel v{}", SQUIRREL_VERSION), "Print the version");
}

// The first word that is not a flag (or the value of --config / --db)
// must name a command; a mistyped one gets a suggestion.
void refuse_unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--config" || w == "--db") {
      ++i;
      continue;
    }
    if (w.starts_with("-")) continue;
    if (!sq::cli::subcommand_named(app, w)) throw sq::Error(sq::ErrorKind::usage, sq::cli::unknown_command_message(app, w));
    return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  sq::store::install_sql_trace_from_env();
  sq::cli::Context ctx;
  CLI::App app;
  build(app, ctx);
  try {
    refuse_unknown_command(app, argc, argv);
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      std::fputs(app.help().c_str(), stdout);
      return 0;
    }
    return ctx.exit_code;
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "Error: %s — run `squirrel --help` for usage\n", e.what());
    return 1;
  } catch (const sq::Error& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: unexpected failure: %s — please report this\n", e.what());
    return 1;
  }
}
