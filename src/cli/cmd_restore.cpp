// squirrel restore <volume> [path…] [--missing] [--from DEST] [--to PATH] [--shallow] [--dry-run] [--in-place] [-P]
// [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/restore/restore.hpp"

namespace sq::cli {

namespace {

struct RestoreFlags {
  std::string volume, from, to, at;
  std::vector<std::string> paths;
  bool shallow = false, dry_run = false, in_place = false, missing = false, progress = false, json = false;
};

nlohmann::json report_json(const engine::RestoreReport& r) {
  return {{"volume", r.volume},   {"from", r.from},       {"to", r.to},
          {"run_id", r.run_id},   {"status", store::to_string(r.status)}, {"dry_run", r.dry_run},
          {"selected", r.selected}, {"restored", r.restored}, {"bytes", r.bytes},
          {"already_correct", r.already_correct}, {"displaced", r.displaced}, {"left_in_place", r.refused_existing},
          {"no_copy", r.no_copy}, {"failed", r.failed},   {"mismatched", r.mismatched}, {"from_other_copy", r.other_copy},
          {"revived", r.revived},
          {"without_index", r.without_index}, {"unnamed", r.unnamed}, {"companions_skipped", r.companions_skipped},
          {"others_skipped", r.others_skipped}, {"receipts_read", r.receipts_read},
          {"receipts_unreadable", r.receipts_unreadable}, {"leftover_temps_removed", r.leftover_temps_removed},
          {"leftover_runs", r.leftover_runs}, {"settled_offloaded", r.settled_offloaded}};
}

// Temp files of killed restores that this run removed before it began.
void note_leftovers(const engine::RestoreReport& r) {
  if (r.leftover_temps_removed == 0) return;
  std::string runs;
  for (auto id : r.leftover_runs) runs += (runs.empty() ? "" : ", ") + std::to_string(id);
  std::fprintf(stderr, "note: removed %lld leftover temp file%s of interrupted restore run(s) %s\n",
               static_cast<long long>(r.leftover_temps_removed), r.leftover_temps_removed == 1 ? "" : "s",
               runs.c_str());
}

// Restore without an index: say what the receipts did and did not vouch for.
void warn_without_index(const engine::RestoreReport& r) {
  if (!r.without_index) return;
  std::fprintf(stderr, "note: no index for volume \"%s\": %s %s, checked against %lld %s(s)\n", r.volume.c_str(),
               r.dry_run ? "would restore from" : "restored from",
               r.from_segments ? "the destination's objects and packs" : "the mirror",
               static_cast<long long>(r.receipts_read), r.from_segments ? "segment" : "receipt");
  if (r.companions_skipped > 0)
    std::fprintf(stderr, "warning: skipped %lld AppleDouble companion files (._*) no receipt names\n",
                 static_cast<long long>(r.companions_skipped));
}

// A file no receipt vouches for was restored without a check of its bytes:
// never a clean result, whatever the run row says.
void fail_on_unchecked(Context& ctx, const engine::RestoreReport& r) {
  if (r.unnamed == 0) return;
  std::fprintf(stderr, "Error: %s %lld file(s) that no receipt vouches for, so their bytes are unchecked "
                       "(unnamed=%lld) — compare them with another copy before you trust them\n",
               r.dry_run ? "would restore" : "restored", static_cast<long long>(r.unnamed),
               static_cast<long long>(r.unnamed));
  ctx.exit_code = 1;
}

std::string summary_line(const engine::RestoreReport& r) {
  return fmt::format("{}{} ← {}: restored={} ({}) already_correct={} displaced={} left_in_place={} no_copy={} "
                     "failed={} mismatched={} from_other_copy={} back_to_present={}{}{}\n",
                     r.dry_run ? "(dry-run) " : "", r.volume, r.from, r.restored, format_bytes(r.bytes),
                     r.already_correct, r.displaced, r.refused_existing, r.no_copy, r.failed, r.mismatched, r.other_copy, r.revived,
                     r.without_index ? fmt::format(" unnamed={}", r.unnamed) : "",
                     r.run_id ? fmt::format(" (run {})", r.run_id) : "");
}

void run(Context& ctx, const RestoreFlags& f) {
  // The reference's --shallow skips the checksum of rclone mirrors only;
  // every source this squirrel restores from is re-hashed regardless.
  if (f.shallow)
    std::fprintf(stderr, "note: --shallow changes nothing here — restore from a native mirror re-hashes every file\n");
  engine::RestoreOptions opts;
  opts.selectors = f.paths;
  opts.from = f.from;
  opts.to = f.to.empty() ? "" : config::expand_path(f.to).string();
  opts.dry_run = f.dry_run;
  opts.in_place = f.in_place;
  opts.missing = f.missing;
  ProgressLine progress(f.progress || stderr_is_tty());
  auto listener = [&](const engine::RestoreEvent& e) {
    using T = engine::RestoreEvent::Type;
    if (e.type == T::progress)
      return progress.update("restoring", {e.files_done, e.files_total, e.bytes_done, e.bytes_total}, e.path);
    progress.clear();
    std::fprintf(stderr, "%s: %s: %s\n", e.type == T::file_error ? "error" : "warning",
                 escape_for_display(e.path).c_str(), e.message.c_str());
  };
  const auto& cfg = ctx.config();
  auto& st = ctx.store();
  if (!f.at.empty()) opts.at_run = engine::resolve_at_run(st.db(), f.at);
  auto r = engine::run_restore(cfg, st, f.volume, opts, listener);
  progress.clear();
  note_leftovers(r);
  warn_without_index(r);
  if (r.settled_offloaded > 0)
    std::fprintf(stderr, "note: %lld file(s) an interrupted offload had removed are now recorded as offloaded\n",
                 static_cast<long long>(r.settled_offloaded));
  if (f.json) print_json(report_json(r));
  else print(summary_line(r));
  if (r.status != store::RunStatus::success) ctx.exit_code = 1;
  fail_on_unchecked(ctx, r);
}

}  // namespace

void add_restore_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<RestoreFlags>();
  auto* cmd = app.add_subcommand("restore", "Bring files back from a destination, offloaded ones included");
  cmd->add_option("volume", f->volume, "Volume name")->required();
  cmd->add_option("paths", f->paths, "Only these files or folders, missing ones included (default: every present and offloaded file)");
  cmd->add_option("--from", f->from, "Destination to restore from (default: the volume's first local or sftp mirror)");
  cmd->add_option("--to", f->to, "Restore into this empty directory instead of the volume");
  cmd->add_flag("--shallow", f->shallow,
                "Skip the checksum comparison (rclone mirrors only; every other source is re-hashed anyway)");
  cmd->add_flag("--dry-run", f->dry_run, "Show what would be restored; write nothing");
  cmd->add_option("--at", f->at, "Files as they were when this run began (a run id, or an RFC 3339 time)");
  cmd->add_flag("--missing", f->missing, "Restore every file the index calls missing (deleted by mistake)");
  cmd->add_flag("--in-place", f->in_place, "Replace files in the way, moving them to .squirrel-restore-history first");
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
