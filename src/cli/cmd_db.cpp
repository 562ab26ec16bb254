// squirrel db backup [--to PATH] [--keep N] | db check | db restore <snapshot> [--force] | db schema
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "store/migrations.hpp"
#include "store/runs.hpp"
#include "store/snapshots.hpp"

namespace sq::cli {

namespace {

struct DbFlags {
  std::string to, snapshot;
  int keep = 0;
  bool force = false;
};

std::filesystem::path backups_dir(Context& ctx) {
  if (auto* cfg = ctx.config_if_present(); cfg && cfg->backups.dir) return *cfg->backups.dir;
  return ctx.db_path().parent_path() / "backups";
}

void backup(Context& ctx, const DbFlags& f) {
  if (f.keep < 0) throw Error(ErrorKind::usage, "--keep must be 0 (keep all) or a positive number");
  auto& db = ctx.existing_store().db();
  auto dir = backups_dir(ctx);
  auto to = f.to.empty() ? store::default_backup_path(dir, now_ns()) : config::expand_path(f.to);
  store::backup_to(db, to);
  print(fmt::format("backup written to {}\n", to.string()));
  for (const auto& p : store::rotate_backups(to.parent_path(), f.keep))
    print(fmt::format("rotated out {}\n", p.string()));
}

void check(Context& ctx) {
  auto problems = store::integrity_problems(ctx.existing_store().db());
  if (problems.empty()) {
    print("ok\n");
    return;
  }
  for (const auto& p : problems) print(escape_for_display(p) + "\n");
  ctx.exit_code = 1;
}

// Another squirrel mid-run would keep writing into the database we replace.
void refuse_if_busy(Context& ctx) {
  auto& db = ctx.existing_store().db();
  store::reap_dead_owners(db);
  auto running = db.query_i64("SELECT id FROM runs WHERE status = 'running' ORDER BY id LIMIT 1");
  if (running)
    throw Error(ErrorKind::refused, fmt::format("run {} is still running against this database — wait for it, or "
                                                "pass --force if that process is gone",
                                                *running));
}

void restore(Context& ctx, const DbFlags& f) {
  auto live = ctx.db_path();
  auto snap = config::expand_path(f.snapshot);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(snap, ec))
    throw Error(ErrorKind::not_found, fmt::format("no snapshot file at {} — see `ls {}`", snap.string(),
                                                  backups_dir(ctx).string()));
  if (std::filesystem::exists(live, ec) && std::filesystem::equivalent(snap, live, ec))
    throw Error(ErrorKind::refused, "the snapshot is the live database — choose a snapshot file from the backups dir");
  auto info = store::inspect_snapshot(snap);
  if (!info.problem.empty())
    throw Error(ErrorKind::refused, fmt::format("{} cannot be restored: {} — choose another snapshot", snap.string(),
                                                info.problem));
  if (info.schema_version != store::current_schema_version())
    throw Error(ErrorKind::refused,
                fmt::format("{} has schema v{} but this squirrel uses v{} — restore it with the matching squirrel "
                            "version",
                            snap.string(), info.schema_version, store::current_schema_version()));
  if (std::filesystem::exists(live, ec) && !f.force) refuse_if_busy(ctx);
  ctx.close_store();  // our own connection must not outlive the file it points at
  auto r = store::restore_snapshot(snap, live);
  print(fmt::format("restored {} from {} (previous database kept at {})\n", live.string(), snap.string(),
                    r.displaced.string()));
}

void schema(Context& ctx) {
  if (ctx.db_exists()) print(store::dump_schema(ctx.existing_store().db()));
  else print(store::fresh_schema());
}

}  // namespace

void add_db_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<DbFlags>();
  auto* cmd = app.add_subcommand("db", "Database maintenance: backup, check, restore, schema");
  auto* b = cmd->add_subcommand("backup", "Write a consistent snapshot of the index database");
  b->add_option("--to", f->to, "Snapshot path (default <db dir>/backups/index-<time>.db)");
  b->add_option("--keep", f->keep, "Keep at most N routine snapshots in that directory (0 keeps all)");
  b->callback([&ctx, f] { backup(ctx, *f); });
  auto* c = cmd->add_subcommand("check", "Run SQLite's integrity and foreign-key checks");
  c->callback([&ctx] { check(ctx); });
  auto* r = cmd->add_subcommand("restore", "Replace the index database with a snapshot");
  r->add_option("snapshot", f->snapshot, "Snapshot file")->required();
  r->add_flag("--force", f->force, "Restore even while a run is recorded as running");
  r->callback([&ctx, f] { restore(ctx, *f); });
  auto* s = cmd->add_subcommand("schema", "Print the database schema (DDL)");
  s->callback([&ctx] { schema(ctx); });
  cmd->callback([cmd] {
    if (cmd->get_subcommands().empty()) print(cmd->help());
  });
}

}  // namespace sq::cli
