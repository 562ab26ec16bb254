// squirrel sync [<volume>] [--to DEST] [--shallow] [--dry-run] [--init [--allow-volatile]] [-P] [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/sync/mirror.hpp"

namespace sq::cli {

namespace {

struct SyncFlags {
  std::string volume, to;
  bool shallow = false, dry_run = false, init = false, allow_volatile = false, progress = false, json = false;
};

using Pair = std::pair<std::string, std::string>;

std::vector<Pair> pairs_for(const config::Config& cfg, const SyncFlags& f) {
  std::vector<Pair> out;
  if (!f.volume.empty() && !cfg.volume(f.volume))
    throw config::unknown_volume(f.volume, cfg.file);
  if (!f.to.empty() && !cfg.destination(f.to) && !cfg.nodes.count(f.to))
    throw Error(ErrorKind::not_found, fmt::format("unknown destination \"{}\" (declare it in {})",
                                                  escape_for_display(f.to), cfg.file.string()));
  for (const auto& [name, vol] : cfg.volumes) {
    if (!f.volume.empty() && name != f.volume) continue;
    for (const auto& target : vol.sync_to)
      if (f.to.empty() || target == f.to) out.emplace_back(name, target);
  }
  if (out.empty())
    throw Error(ErrorKind::usage, "nothing to sync — add the destination to the volume's sync_to list in the config");
  return out;
}

nlohmann::json report_json(const engine::sync::SyncReport& r) {
  return {{"volume", r.volume},         {"destination", r.destination}, {"run_id", r.run_id},
          {"status", store::to_string(r.status)}, {"dry_run", r.dry_run}, {"initialized", r.initialized},
          {"planned", r.planned},       {"written", r.written},         {"bytes", r.bytes},
          {"already_live", r.already_live}, {"displaced", r.displaced}, {"displaced_unrecorded", r.displaced_unrecorded},
          {"foreign", r.foreign},       {"drift", r.drift},             {"failed", r.failed},
          {"adopted", r.adopted},       {"left_foreign", r.left_foreign},
          {"method", r.method},         {"evidence_advanced", r.evidence_advanced}, {"error", r.error},
          {"volatile_fs", r.volatile_fs.empty() ? nlohmann::json() : nlohmann::json(r.volatile_fs)},
          {"packs", r.packs},           {"pack_contents", r.pack_contents}, {"pack_bytes", r.pack_bytes},
          {"packs_estimated", r.packs_estimated}};
}

// Adoption is rare (a first push onto copies squirrel has no record of),
// so it is named only when it happens.
std::string summary(const engine::sync::SyncReport& r) {
  if (r.dry_run)
    return fmt::format("(dry-run) {} → {}: would write {} file(s), {}; {} already there{}{}\n", r.volume, r.destination,
                       r.planned, format_bytes(r.bytes), r.already_live,
                       r.adopted ? fmt::format(" (of them {} to adopt once read back)", r.adopted) : "",
                       r.pack_contents ? fmt::format("; {} of them ({}) into about {} pack(s)", r.pack_contents,
                                                     format_bytes(r.pack_bytes), r.packs_estimated)
                                       : "");
  return fmt::format("{} → {}: run={} {} written={} ({}) unchanged={} displaced={} foreign={} drift={} failed={}{}{}{}\n",
                     r.volume, r.destination, r.run_id, store::to_string(r.status), r.written, format_bytes(r.bytes),
                     r.already_live, r.displaced, r.displaced_unrecorded, r.drift, r.failed,
                     r.adopted ? fmt::format(" adopted={}", r.adopted) : "",
                     r.packs ? fmt::format(" packs={}", r.packs) : "",
                     r.method.empty() ? "" : " evidence=" + r.method);
}

}  // namespace

namespace {

engine::sync::SyncListener listener_for(ProgressLine& progress) {
  return [&progress](const engine::sync::SyncEvent& e) {
    using T = engine::sync::SyncEvent::Type;
    if (e.type == T::progress)
      return progress.update("syncing", {e.files_done, e.files_total, e.bytes_done, e.bytes_total}, e.path);
    progress.clear();
    // A warning about the run as a whole (the index snapshot) names no path.
    std::string where = e.path.empty() ? "" : escape_for_display(e.path) + ": ";
    std::fprintf(stderr, "%s: %s%s\n", e.type == T::file_error ? "error" : "warning", where.c_str(), e.message.c_str());
  };
}

void run(Context& ctx, const SyncFlags& f) {
  const auto& cfg = ctx.config();
  auto pairs = pairs_for(cfg, f);
  auto& st = ctx.store();
  ProgressLine progress(f.progress || stderr_is_tty());
  engine::sync::SyncOptions opts;
  opts.dry_run = f.dry_run;
  opts.init = f.init;
  opts.shallow = f.shallow;
  opts.allow_volatile = f.allow_volatile;
  auto out = nlohmann::json::array();
  int failures = 0;
  for (const auto& [volume, dest] : pairs) {
    try {
      auto r = engine::sync::run_mirror_sync(cfg, st, volume, dest, opts, listener_for(progress));
      progress.clear();
      failures += r.status != store::RunStatus::success;
      if (f.json) out.push_back(report_json(r));
      else print(summary(r));
    } catch (const Error& e) {
      progress.clear();
      ++failures;
      std::fprintf(stderr, "Error: %s → %s: %s\n", volume.c_str(), dest.c_str(), e.what());
      if (f.json) out.push_back({{"volume", volume}, {"destination", dest}, {"error", e.what()}});
    }
  }
  if (f.json) print_json(out);
  if (failures) ctx.exit_code = 1;
}

}  // namespace

void add_sync_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<SyncFlags>();
  auto* cmd = app.add_subcommand("sync", "Copy indexed volumes to their destinations and verify every copy");
  cmd->add_option("volume", f->volume, "Volume name (default: every volume with sync_to)");
  cmd->add_option("--to", f->to, "Only this destination");
  cmd->add_flag("--shallow", f->shallow,
                "Compare by size and mtime instead of a checksum (rclone mirrors only; refused on native mirrors)");
  cmd->add_flag("--dry-run", f->dry_run, "Show what would be copied; write nothing and record no run");
  auto* init = cmd->add_flag("--init", f->init,
                             "First sync: create a missing root and the destination marker (only where empty)");
  cmd->add_flag("--allow-volatile", f->allow_volatile,
                "With --init: accept a destination on a memory filesystem (tmpfs); its copies never count as durable")
      ->needs(init);
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
