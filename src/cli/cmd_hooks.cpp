// squirrel hooks [--volume NAME] [--limit N] [--json]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "store/hook_runs.hpp"
#include "store/volumes.hpp"

namespace sq::cli {

namespace {

struct HooksFlags {
  std::string volume;
  int limit = 20;
  bool json = false;
};

nlohmann::json hook_json(const store::HookRunRow& h) {
  return {{"id", h.id},
          {"volume", h.volume_name},
          {"trigger", h.trigger},
          {"triggering_run", h.triggering_run ? nlohmann::json(*h.triggering_run) : nlohmann::json()},
          {"changed", h.changed},
          {"started_at", rfc3339_utc(h.started_at_ns)},
          {"status", h.status},
          {"exit_code", h.exit_code ? nlohmann::json(*h.exit_code) : nlohmann::json()},
          {"error", h.error}};
}

std::vector<std::string> hook_cells(const store::HookRunRow& h) {
  return {std::to_string(h.id),
          h.volume_name,
          h.trigger,
          h.triggering_run ? std::to_string(*h.triggering_run) : "—",
          h.changed ? "yes" : "no",
          rfc3339_utc(h.started_at_ns),
          h.ended_at_ns ? format_duration_ns(*h.ended_at_ns - h.started_at_ns) : "—",
          h.status,
          h.exit_code ? std::to_string(*h.exit_code) : "—",
          escape_for_display(h.error)};
}

void list(Context& ctx, const HooksFlags& f) {
  if (f.limit < 0)
    throw Error(ErrorKind::usage, "--limit cannot be negative — give a positive number, or 0 for no limit");
  std::vector<store::HookRunRow> hooks;
  if (ctx.db_exists()) {
    auto& db = ctx.existing_store().db();
    std::optional<std::int64_t> vid;
    if (!f.volume.empty()) {
      auto v = store::find_volume(db, f.volume);
      if (!v) throw config::unknown_volume(f.volume, ctx.config_path());
      vid = v->id;
    }
    hooks = store::list_hook_runs(db, vid, f.limit);
  }
  if (f.json) {
    auto arr = nlohmann::json::array();
    for (const auto& h : hooks) arr.push_back(hook_json(h));
    print_json(arr);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : hooks) rows.push_back(hook_cells(h));
  print(render_table({"ID", "VOLUME", "TRIGGER", "RUN", "CHANGED", "STARTED", "DURATION", "STATUS", "EXIT", "ERROR"},
                     rows));
}

}  // namespace

void add_hooks_command(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<HooksFlags>();
  auto* cmd = app.add_subcommand("hooks", "List hook invocations, newest first");
  cmd->add_option("--volume", flags->volume, "Only hooks of this volume");
  cmd->add_option("--limit", flags->limit, "How many to show (default 20; 0 shows all)");
  cmd->add_flag("--json", flags->json, "Print JSON");
  cmd->callback([&ctx, flags] { list(ctx, *flags); });
}

}  // namespace sq::cli
