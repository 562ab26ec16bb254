// squirrel backup [<volume>...] [--shallow] [--init] [-P] [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/backup.hpp"

namespace sq::cli {

namespace {

struct BackupFlags {
  std::vector<std::string> volumes;
  bool shallow = false, init = false, progress = false, json = false;
};

std::string index_line(const engine::BackupVolume& v) {
  if (!v.index) return fmt::format("{}: index refused: {}\n", v.name, v.index_error);
  const auto& r = *v.index;
  return fmt::format("{}: index {} added={} modified={} unchanged={} missing={} errors={} (run {})\n", v.name,
                     store::to_string(r.status), r.added, r.modified, r.unchanged, r.missing, r.errors, r.run_id);
}

std::string sync_line(const std::string& volume, const engine::BackupSync& s) {
  if (!s.report) return fmt::format("{} → {}: refused: {}\n", volume, s.destination, s.error);
  const auto& r = *s.report;
  return fmt::format("{} → {}: sync {} written={} ({}) unchanged={} failed={} (run {})\n", volume, s.destination,
                     store::to_string(r.status), r.written, format_bytes(r.bytes), r.already_live, r.failed,
                     r.run_id);
}

// The status of each volume afterwards: its light and every reason, as
// `status` gives them.
std::string verdict(const engine::BackupReport& rep) {
  std::string out;
  for (const auto& v : rep.status.volumes) {
    out += fmt::format("{}: {}\n", v.name, engine::to_string(v.light));
    for (const auto& why : v.reasons) out += "  why: " + why + "\n";
    for (const auto& t : v.targets)
      for (const auto& why : t.reasons) out += "  why: " + why + "\n";
  }
  return out + fmt::format("backup: {}\n", engine::to_string(rep.light));
}

bool needs_init(const engine::BackupReport& rep) {
  for (const auto& v : rep.volumes)
    for (const auto& s : v.syncs)
      if (!s.report && s.error.find("--init") != std::string::npos) return true;
  return false;
}

nlohmann::json report_json(const engine::BackupReport& rep) {
  auto volumes = nlohmann::json::array();
  for (const auto& v : rep.volumes) {
    auto syncs = nlohmann::json::array();
    for (const auto& s : v.syncs)
      syncs.push_back({{"destination", s.destination},
                       {"status", s.report ? nlohmann::json(store::to_string(s.report->status)) : nullptr},
                       {"run_id", s.report ? s.report->run_id : 0},
                       {"written", s.report ? s.report->written : 0},
                       {"error", s.report ? s.report->error : s.error}});
    volumes.push_back({{"volume", v.name},
                       {"index_status", v.index ? nlohmann::json(store::to_string(v.index->status)) : nullptr},
                       {"index_run_id", v.index ? v.index->run_id : 0},
                       {"index_error", v.index_error},
                       {"syncs", syncs}});
  }
  return {{"volumes", volumes}, {"light", engine::to_string(rep.light)},
          {"exit_code", engine::exit_code_for(rep.light)}};
}

void run(Context& ctx, const BackupFlags& f) {
  const auto& cfg = ctx.config();
  engine::BackupOptions opts{f.volumes, f.shallow, f.init, {}};
  engine::volumes_to_back_up(cfg, opts);  // refuses bad names before a database is created
  auto& st = ctx.store();
  ProgressLine progress(f.progress || stderr_is_tty());
  engine::BackupListeners l;
  l.index = [&](const engine::IndexEvent& e) {
    if (e.type == engine::IndexEvent::Type::progress) return progress.update("indexing", e.files_done, e.bytes_done, e.path);
    progress.clear();
    std::fprintf(stderr, "%s: %s: %s\n", e.type == engine::IndexEvent::Type::file_error ? "error" : "warning",
                 escape_for_display(e.path).c_str(), e.message.c_str());
  };
  l.sync = [&](const engine::sync::SyncEvent& e) {
    using T = engine::sync::SyncEvent::Type;
    if (e.type == T::progress)
      return progress.update("syncing", {e.files_done, e.files_total, e.bytes_done, e.bytes_total}, e.path);
    progress.clear();
    std::string where = e.path.empty() ? "" : escape_for_display(e.path) + ": ";
    std::fprintf(stderr, "%s: %s%s\n", e.type == T::file_error ? "error" : "warning", where.c_str(), e.message.c_str());
  };
  auto rep = engine::run_backup(cfg, st, opts, l, now_ns());
  progress.clear();
  if (f.json) {
    print_json(report_json(rep));
  } else {
    for (const auto& v : rep.volumes) {
      print(index_line(v));
      for (const auto& s : v.syncs) print(sync_line(v.name, s));
    }
    print(verdict(rep));
  }
  if (needs_init(rep) && !f.init)
    std::fprintf(stderr, "hint: a destination that has never been synced to needs a first backup with --init: "
                         "`squirrel backup --init`\n");
  ctx.exit_code = engine::exit_code_for(rep.light);
}

}  // namespace

void add_backup_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<BackupFlags>();
  auto* cmd = app.add_subcommand("backup", "Index, then sync to every destination in sync_to, then judge (exit 0/1/2)");
  cmd->add_option("volumes", f->volumes, "Volumes to back up (default: every volume with a sync_to)");
  cmd->add_flag("--shallow", f->shallow, "Index trusting size and mtime of unchanged files instead of re-hashing them");
  cmd->add_flag("--init", f->init, "First backup: let each sync create a missing destination root and marker");
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
