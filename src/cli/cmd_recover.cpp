// squirrel recover --from DEST [--snapshot N|NAME] [--execute] [--keep-database] [--yes] [--force] [--json]
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "cli/replace_db.hpp"
#include "core/error.hpp"
#include "core/private_files.hpp"
#include "core/text.hpp"
#include "engine/recover.hpp"

namespace sq::cli {

namespace {

struct RecoverFlags {
  std::string from, snapshot;
  bool execute = false, keep_database = false, yes = false, force = false, json = false;
};

std::string taken(const engine::RemoteSnapshot& s) {
  return s.taken_at_ns ? rfc3339_utc(*s.taken_at_ns) : "unknown age";
}

nlohmann::json snapshot_json(const engine::RemoteSnapshot& s, std::size_t number) {
  return {{"number", number},
          {"volume", s.volume},
          {"name", s.name},
          {"location", s.location},
          {"taken_at", s.taken_at_ns ? nlohmann::json(rfc3339_utc(*s.taken_at_ns)) : nlohmann::json()},
          {"run_id", s.run_id ? nlohmann::json(*s.run_id) : nlohmann::json()},
          {"size", s.size}};
}

std::string plan_text(const engine::RecoverPlan& plan) {
  if (plan.snapshots.empty())
    return fmt::format("no index snapshot at \"{}\" ({}) — restore each volume from the mirror: `squirrel restore "
                       "<volume>` checks every file against the receipts there\n",
                       plan.destination, escape_for_display(plan.root));
  std::string out = fmt::format("index snapshots at \"{}\" ({}), newest first:\n", plan.destination,
                                escape_for_display(plan.root));
  for (std::size_t i = 0; i < plan.snapshots.size(); ++i) {
    const auto& s = plan.snapshots[i];
    out += fmt::format("  {:>2}  {}  {}  {}\n", i + 1, escape_for_display(s.location), taken(s), format_bytes(s.size));
  }
  return out;
}

// Stdin that is not a terminal (a script, a pipe) never answers yes.
bool confirmed(const std::string& question, bool yes) {
  if (yes) return true;
  if (!::isatty(STDIN_FILENO))
    throw Error(ErrorKind::refused, question + " — stdin is not a terminal; run it again with --yes to confirm");
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

// A private scratch directory beside the database, removed on every path.
class ScratchDir {
 public:
  explicit ScratchDir(const std::filesystem::path& db) : dir_(db.parent_path() / fmt::format(".recover-{}", ::getpid())) {
    std::error_code ec;
    create_private_directories(dir_, ec);
    if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", dir_.string(), ec.message()));
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace

namespace {

struct Installed {
  engine::FetchedSnapshot snap;
  std::filesystem::path previous;
};

std::optional<Installed> install(Context& ctx, const engine::RecoverPlan& plan, const RecoverFlags& f) {
  ScratchDir scratch(ctx.db_path());
  std::optional<std::string> choice;
  if (!f.snapshot.empty()) choice = f.snapshot;
  auto warn = [](const std::string& m) { std::fprintf(stderr, "warning: %s\n", m.c_str()); };
  auto snap = engine::fetch_snapshot(plan, choice, scratch.path(), warn);
  std::string what = fmt::format("{} (taken {})", snap.from.location, taken(snap.from));
  if (ctx.db_exists() &&
      !confirmed(fmt::format("replace the index database {} with {}? The current file is kept beside it",
                             ctx.db_path().string(), what),
                 f.yes))
    return std::nullopt;
  auto r = replace_database(ctx, snap.file, f.force, "squirrel recover --from " + f.from + " --execute");
  return Installed{snap, r.displaced};
}

std::string volume_lines(const std::vector<engine::VolumeRecovery>& vols) {
  std::string out;
  for (const auto& v : vols) {
    out += fmt::format("{}: {} — {}\n", v.volume, engine::to_string(v.state), v.detail);
    if (!v.warning.empty()) out += fmt::format("warning: {}: {}\n", v.volume, v.warning);
  }
  for (const auto& v : vols)
    if (!v.next.empty()) out += fmt::format("next: {}\n", v.next);
  return out;
}

bool troubled(const engine::VolumeRecovery& v) {
  using S = engine::VolumeRecovery::State;
  return v.state == S::folder_missing || v.state == S::holds_files || v.state == S::path_differs;
}

}  // namespace

namespace {

void run(Context& ctx, const RecoverFlags& f) {
  const auto& cfg = ctx.config();
  auto plan = engine::plan_recover(cfg, f.from);
  nlohmann::json out = {{"destination", plan.destination}, {"root", plan.root}, {"executed", f.execute}};
  out["snapshots"] = nlohmann::json::array();
  for (std::size_t i = 0; i < plan.snapshots.size(); ++i) out["snapshots"].push_back(snapshot_json(plan.snapshots[i], i + 1));
  if (!f.json) print(plan_text(plan));
  if (!f.execute) {
    if (f.json) return print_json(out);
    if (!plan.snapshots.empty())
      print(fmt::format("nothing changed; `squirrel recover --from {} --execute` installs snapshot 1 (--snapshot N "
                        "for another) and prepares the volume folders\n",
                        f.from));
    return;
  }
  std::optional<Installed> installed;
  if (!f.keep_database) {
    installed = install(ctx, plan, f);
    if (!installed) {
      print("stopped; nothing changed\n");
      ctx.exit_code = 1;
      return;
    }
    if (!f.json)
      print(fmt::format("installed {} as {} ({})\n", installed->snap.from.location, ctx.db_path().string(),
                        installed->previous.empty() ? "there was no previous database"
                                                    : "previous database kept at " + installed->previous.string()));
  }
  auto& db = ctx.store().db();
  auto vols = engine::prepare_volumes(cfg, db, plan, true);
  auto run_id = engine::record_recovery(db, plan, installed ? &installed->snap : nullptr, vols);
  for (const auto& v : vols) ctx.exit_code |= troubled(v) ? 1 : 0;
  if (!f.json) {
    print(volume_lines(vols));
    print(fmt::format("then: squirrel backup (recorded as run {})\n", run_id));
    return;
  }
  out["run_id"] = run_id;
  if (installed) out["installed"] = installed->snap.from.location;
  if (installed && !installed->previous.empty()) out["previous_database"] = installed->previous.string();
  out["volumes"] = nlohmann::json::array();
  for (const auto& v : vols)
    out["volumes"].push_back(
        {{"volume", v.volume}, {"state", engine::to_string(v.state)}, {"detail", v.detail}, {"next", v.next},
         {"warning", v.warning}});
  print_json(out);
}

}  // namespace

void add_recover_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<RecoverFlags>();
  auto* cmd = app.add_subcommand("recover", "Get the index back from a destination after losing the machine");
  cmd->add_option("--from", f->from, "The destination to recover from")->required();
  cmd->add_option("--snapshot", f->snapshot, "Which snapshot: its number in the listing or its file name (default: "
                                             "the newest usable)");
  cmd->add_flag("--execute", f->execute, "Install the snapshot and prepare the volume folders (default: only list)");
  cmd->add_flag("--keep-database", f->keep_database,
                "With --execute: keep the live database; only prepare the volume folders");
  cmd->add_flag("--yes", f->yes, "Replace a live database without asking");
  cmd->add_flag("--force", f->force, "Replace it even while a run is recorded as running against it");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
