// squirrel audit [<volume>] [--deep | --folders] [--json]
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/index.hpp"
#include "engine/volume.hpp"
#include "store/files.hpp"
#include "store/volumes.hpp"

namespace sq::cli {

namespace {

struct AuditFlags {
  std::string volume;
  bool deep = false, folders = false, json = false;
};

// --folders: re-derive every folder hash from the rows; no disk access.
nlohmann::json audit_folders(Context& ctx, const std::string& name, bool json) {
  auto& st = ctx.existing_store();
  auto vol = engine::resolve_volume(ctx.config(), st.db(), name, engine::ResolveMode::existing);
  auto run_id = store::begin_run_or_throw(st.db(), {store::RunKind::audit, vol.row->id, ""});
  auto problems = store::folder_divergences(st.db(), vol.row->id);
  auto status = problems.empty() ? store::RunStatus::success : store::RunStatus::partial;
  store::finish_run(st.db(), run_id,
                    {status, problems.empty() ? "" : fmt::format("{} folder divergence(s)", problems.size()), 0,
                     static_cast<std::int64_t>(problems.size())});
  if (!problems.empty()) ctx.exit_code = 1;
  if (!json) {
    if (problems.empty()) print(fmt::format("audit {} --folders: consistent (run {})\n", name, run_id));
    for (const auto& p : problems) print(fmt::format("audit {} --folders: {}\n", name, escape_for_display(p)));
  }
  return {{"volume", name}, {"run_id", run_id}, {"divergences", problems}};
}

nlohmann::json audit_walk(Context& ctx, const std::string& name, const AuditFlags& f) {
  engine::IndexOptions opts;
  opts.mode = f.deep ? engine::IndexMode::audit_deep : engine::IndexMode::audit;
  ProgressLine progress(stderr_is_tty());
  auto listener = [&](const engine::IndexEvent& e) {
    using T = engine::IndexEvent::Type;
    if (e.type == T::progress) return progress.update("auditing", e.files_done, e.bytes_done, e.path);
    progress.clear();
    const char* label = e.type == T::file_error ? "error" : e.type == T::finding ? "drift" : "warning";
    std::fprintf(stderr, "%s: %s: %s\n", label, escape_for_display(e.path).c_str(), e.message.c_str());
  };
  auto r = engine::run_index(ctx.config(), ctx.existing_store(), name, opts, listener);
  progress.clear();
  if (r.findings()) ctx.exit_code = 1;
  if (!f.json)
    print(fmt::format("audit {}: run={} added={} modified={} unchanged={} missing={} errors={}\n", name, r.run_id,
                      r.added, r.modified, r.unchanged, r.missing, r.errors));
  return {{"volume", name},       {"run_id", r.run_id},       {"added", r.added},   {"modified", r.modified},
          {"unchanged", r.unchanged}, {"missing", r.missing}, {"errors", r.errors}, {"deep", f.deep}};
}

void run(Context& ctx, const AuditFlags& f) {
  if (f.deep && f.folders) throw Error(ErrorKind::usage, "--deep and --folders cannot be combined — pick one");
  const auto& cfg = ctx.config();
  std::vector<std::string> names;
  if (!f.volume.empty()) {
    if (!cfg.volume(f.volume))
      throw config::unknown_volume(f.volume, cfg.file);
    names.push_back(f.volume);
  }
  else for (const auto& [n, v] : cfg.volumes) names.push_back(n);
  auto out = nlohmann::json::array();
  for (const auto& n : names) out.push_back(f.folders ? audit_folders(ctx, n, f.json) : audit_walk(ctx, n, f));
  if (f.json) print_json(out);
}

}  // namespace

void add_audit_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<AuditFlags>();
  auto* cmd = app.add_subcommand("audit", "Compare volumes on disk with the index (exit 1 on any finding)");
  cmd->add_option("volume", f->volume, "Volume name (default: every configured volume)");
  cmd->add_flag("--deep", f->deep, "Re-hash every file to catch bit rot");
  cmd->add_flag("--folders", f->folders, "Re-derive folder Merkle hashes from the index without reading the disk");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
