// squirrel index <volume> [--shallow] [--dry-run] [--workers N] [-P] [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/index.hpp"

namespace sq::cli {

namespace {

struct IndexFlags {
  std::string volume;
  bool shallow = false, dry_run = false, progress = false, json = false;
  int workers = 0;
};

nlohmann::json report_json(const engine::IndexReport& r) {
  return {{"volume", r.volume},         {"run_id", r.run_id},         {"status", store::to_string(r.status)},
          {"dry_run", r.dry_run},       {"added", r.added},           {"modified", r.modified},
          {"unchanged", r.unchanged},   {"missing", r.missing},       {"errors", r.errors},
          {"reserved", r.reserved},     {"skipped", r.skipped_special}, {"bytes_hashed", r.bytes_hashed},
          {"first_index", r.first_index}};
}

std::string summary_line(const engine::IndexReport& r) {
  return fmt::format("{}{}: added={} modified={} unchanged={} missing={} errors={}{}{}\n",
                     r.dry_run ? "(dry-run) " : "", r.volume, r.added, r.modified, r.unchanged, r.missing, r.errors,
                     r.reserved ? fmt::format(" reserved={}", r.reserved) : "",
                     r.run_id ? fmt::format(" (run {})", r.run_id) : "");
}

void run(Context& ctx, const IndexFlags& f) {
  if (f.workers < 0 || f.workers > 256) throw Error(ErrorKind::usage, "--workers must be between 1 and 256");
  const auto& cfg = ctx.config();
  if (!cfg.volume(f.volume))
    throw config::unknown_volume(f.volume, cfg.file);
  auto& st = f.dry_run && !ctx.db_exists() ? ctx.scratch_store() : ctx.store();
  ProgressLine progress(f.progress || stderr_is_tty());
  engine::IndexOptions opts;
  opts.shallow = f.shallow;
  opts.dry_run = f.dry_run;
  opts.workers = f.workers;
  auto listener = [&](const engine::IndexEvent& e) {
    using T = engine::IndexEvent::Type;
    if (e.type == T::progress) return progress.update("indexing", e.files_done, e.bytes_done, e.path);
    progress.clear();
    const char* label = e.type == T::file_error ? "error" : "warning";
    std::fprintf(stderr, "%s: %s: %s\n", label, escape_for_display(e.path).c_str(), e.message.c_str());
  };
  auto report = engine::run_index(cfg, st, f.volume, opts, listener);
  progress.clear();
  if (report.first_index && report.added == 0 && report.errors == 0)
    warn("no files found — new volume, empty directory, or wrong mount?");
  if (report.skipped_special)
    std::fprintf(stderr, "note: skipped %lld symlinks, devices, FIFOs or sockets (only regular files are indexed)\n",
                 static_cast<long long>(report.skipped_special));
  if (f.json) print_json(report_json(report));
  else print(summary_line(report));
  // One line for both: errors first, since they are what stopped files being recorded.
  if (report.errors) {
    std::fprintf(stderr, "Error: encountered %lld error(s) during the walk — the paths listed above were not "
                         "recorded (files missing elsewhere were still flagged); fix them and index again\n",
                 static_cast<long long>(report.errors));
    ctx.exit_code = 1;
  } else if (report.reserved) {
    std::fprintf(stderr, "Error: %lld entr%s under names squirrel reserves (listed above) %s never copied — rename "
                         "or remove them\n",
                 static_cast<long long>(report.reserved), report.reserved == 1 ? "y" : "ies",
                 report.reserved == 1 ? "is" : "are");
    ctx.exit_code = 1;
  }
}

}  // namespace

void add_index_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<IndexFlags>();
  auto* cmd = app.add_subcommand("index", "Walk a volume, hash its files and record them in the index");
  cmd->add_option("volume", f->volume, "Volume name from the config")->required();
  cmd->add_flag("--shallow", f->shallow, "Trust size and mtime of unchanged files instead of re-hashing them");
  cmd->add_flag("--dry-run", f->dry_run, "Classify only; write nothing (no marker, no run, no rows)");
  cmd->add_option("--workers", f->workers, "Hashing threads (default: one per CPU)");
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print the summary as JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
