// squirrel offload <volume> [path…] [--older-than DUR] [--dry-run] [--per-file] [-P] [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/offload/offload.hpp"

namespace sq::cli {

namespace {

struct OffloadFlags {
  std::string volume, older_than;
  std::vector<std::string> paths;
  bool dry_run = false, per_file = false, progress = false, json = false;
};

nlohmann::json report_json(const engine::OffloadReport& r) {
  auto groups = nlohmann::json::array();
  for (const auto& g : r.refusals)
    groups.push_back({{"target", g.target}, {"cause", engine::to_string(g.cause)}, {"files", g.files},
                      {"example", escape_for_display(g.example_path)}, {"detail", g.example_detail}, {"next", g.next}});
  auto per_file = nlohmann::json::array();
  for (const auto& [path, ref] : r.per_file)
    per_file.push_back({{"path", escape_for_display(path)}, {"target", ref.target},
                        {"cause", engine::to_string(ref.cause)}, {"detail", ref.detail}});
  auto drifted = nlohmann::json::array();
  for (const auto& [path, what] : r.drifted) drifted.push_back({{"path", escape_for_display(path)}, {"what", what}});
  return {{"volume", r.volume},       {"run_id", r.run_id},         {"status", store::to_string(r.status)},
          {"dry_run", r.dry_run},     {"candidates", r.candidates}, {"offloaded", r.offloaded},
          {"bytes", r.bytes},         {"not_durable", r.not_durable}, {"drift", r.drift},
          {"errors", r.errors},       {"refusals", groups},         {"satisfied", r.satisfied},
          {"per_file", per_file},     {"drifted", drifted},         {"unmatched_selectors", r.unmatched_selectors},
          {"copies_rehashed", r.copies_rehashed}, {"settled_offloaded", r.settled_offloaded},
          {"settled_kept", r.settled_kept}, {"destination_refused", r.world_refused}};
}

void print_report(const engine::OffloadReport& r) {
  if (r.settled_offloaded + r.settled_kept > 0)
    std::fprintf(stderr, "note: settled an interrupted offload: %lld file(s) it had removed are now offloaded, %lld "
                         "still on disk stay present\n",
                 static_cast<long long>(r.settled_offloaded), static_cast<long long>(r.settled_kept));
  for (const auto& s : r.unmatched_selectors)
    std::fprintf(stderr, "warning: selector %s matched no present files\n", escape_for_display(s).c_str());
  for (const auto& [path, what] : r.drifted)
    std::fprintf(stderr, "kept: %s: %s\n", escape_for_display(path).c_str(), what.c_str());
  for (const auto& g : r.refusals)
    print(fmt::format("not durable on {}: {} file(s) {} (e.g. {}: {})\n  next: {}\n", g.target, g.files,
                      engine::to_string(g.cause), escape_for_display(g.example_path), g.example_detail, g.next));
  for (const auto& [path, ref] : r.per_file)
    print(fmt::format("  {}: {} {} ({})\n", escape_for_display(path), ref.target, engine::to_string(ref.cause),
                      ref.detail));
  for (const auto& [target, n] : r.satisfied)
    print(fmt::format("{}: satisfied for {} of {} file(s)\n", target, n, r.candidates));
  print(fmt::format("{}{}: offloaded={} ({}) not_durable={} drift={} errors={}{}{}\n", r.dry_run ? "(dry-run) " : "",
                    r.volume, r.offloaded, format_bytes(r.bytes), r.not_durable, r.drift, r.errors,
                    r.dry_run ? "" : fmt::format(" copies_rehashed={}", r.copies_rehashed),
                    r.run_id ? fmt::format(" (run {})", r.run_id) : ""));
}

void run(Context& ctx, const OffloadFlags& f) {
  engine::OffloadOptions opts;
  opts.selectors = f.paths;
  opts.dry_run = f.dry_run;
  opts.per_file = f.per_file;
  if (!f.older_than.empty()) {
    opts.older_than_ns = parse_duration_ns(f.older_than);
    if (!opts.older_than_ns || *opts.older_than_ns <= 0)
      throw Error(ErrorKind::usage, fmt::format("--older-than \"{}\" is not a positive duration like 90d or 12h",
                                                escape_for_display(f.older_than)));
  }
  ProgressLine progress(f.progress || stderr_is_tty());
  auto listener = [&progress](const engine::ProgressEvent& e) {
    progress.update(e.stage, {e.files_done, e.files_total, e.bytes_done, e.bytes_total}, e.path);
  };
  auto r = engine::run_offload(ctx.config(), ctx.store(), f.volume, opts, listener);
  progress.clear();
  if (f.json) print_json(report_json(r));
  else print_report(r);
  // A destination that looked wrong (gone, alarmed, volatile, a damaged
  // copy) is a problem to act on, not a decision: it exits non-zero.
  if (r.errors || r.drift || r.world_refused) ctx.exit_code = 1;
}

}  // namespace

void add_offload_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<OffloadFlags>();
  auto* cmd = app.add_subcommand("offload", "Free local space for files whose copies are proven durable");
  cmd->add_option("volume", f->volume, "Volume name")->required();
  cmd->add_option("paths", f->paths, "Files or folders inside the volume; `.` for all of it");
  cmd->add_option("--older-than", f->older_than, "Only files whose mtime is older than this (e.g. 180d)");
  cmd->add_flag("--dry-run", f->dry_run, "Judge only; delete nothing and record no run");
  cmd->add_flag("--per-file", f->per_file, "List every refused file with its cause");
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
