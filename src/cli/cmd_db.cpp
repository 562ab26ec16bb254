// squirrel db backup [--to PATH] [--keep N] | db check | db restore <snapshot> [--force] | db schema
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "cli/replace_db.hpp"
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

// The newest snapshot in the backups dir that `db restore` would take.
std::optional<std::filesystem::path> newest_restorable(Context& ctx) {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(backups_dir(ctx), ec)) {
    auto name = e.path().filename().string();
    if (e.is_regular_file(ec) && name.starts_with("index-") && name.ends_with(".db")) found.push_back(e.path());
  }
  std::sort(found.rbegin(), found.rend());  // names sort by time
  for (const auto& p : found) {
    auto info = store::inspect_snapshot(p);
    if (info.problem.empty() && info.schema_version == store::current_schema_version()) return p;
  }
  return std::nullopt;
}

// A database too damaged to open as a store is checked as the file it is.
std::vector<std::string> damage_of(Context& ctx, const Error& why) {
  auto db = store::Db::open(ctx.db_path(), {.create = false, .read_only = false});
  auto problems = store::integrity_problems(db);
  if (problems.empty()) problems.push_back(why.what());
  return problems;
}

void check(Context& ctx) {
  std::vector<std::string> problems;
  try {
    problems = store::integrity_problems(ctx.existing_store().db());
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::corrupt) throw;
    problems = damage_of(ctx, e);
  }
  if (problems.empty()) {
    print("ok\n");
    return;
  }
  for (const auto& p : problems) print(escape_for_display(p) + "\n");
  ctx.exit_code = 1;
  if (auto snap = newest_restorable(ctx))
    print(fmt::format("the newest intact snapshot is {} — restore it with `squirrel db restore {}`\n", snap->string(),
                      snap->string()));
  else
    print(fmt::format("no intact snapshot in {} — restore one from elsewhere with `squirrel db restore <file>`\n",
                      backups_dir(ctx).string()));
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
  auto r = replace_database(ctx, snap, f.force, "squirrel db restore " + snap.string());
  print(fmt::format("restored {} from {} ({})\n", live.string(), snap.string(),
                    r.displaced.empty() ? "there was no previous database"
                                        : "previous database kept at " + r.displaced.string()));
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
  r->add_flag("--force", f->force,
              "Restore even while a run is recorded as running, or when the database is too damaged to tell");
  r->callback([&ctx, f] { restore(ctx, *f); });
  auto* s = cmd->add_subcommand("schema", "Print the database schema (DDL)");
  s->callback([&ctx] { schema(ctx); });
  cmd->callback([cmd] {
    if (cmd->get_subcommands().empty()) print(cmd->help());
  });
}

}  // namespace sq::cli
