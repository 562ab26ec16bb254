// squirrel config check [--json]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "engine/privacy.hpp"

namespace sq::cli {

namespace {

nlohmann::json lines_json(const config::Config& cfg, const std::vector<config::CheckLine>& lines, bool ok) {
  auto arr = nlohmann::json::array();
  for (const auto& l : lines)
    arr.push_back({{"section", l.section}, {"name", l.name}, {"level", l.level}, {"detail", l.detail}});
  return {{"config", cfg.file.string()}, {"checks", arr}, {"ok", ok}};
}

std::string render_lines(const config::Config& cfg, const std::vector<config::CheckLine>& lines) {
  std::string out = fmt::format("config: {}\n", cfg.file.string());
  for (const char* section : {"volumes", "destinations", "nodes", "offload", "layout", "privacy"}) {
    std::vector<const config::CheckLine*> in;
    for (const auto& l : lines)
      if (l.section == section) in.push_back(&l);
    // Sections that only ever hold findings are left out when empty.
    std::string_view name = section;
    if (in.empty() && (name == "offload" || name == "layout" || name == "privacy")) continue;
    out += fmt::format("\n{} ({})\n", section, in.size());
    for (const auto* l : in) out += fmt::format("  {:<4}  {}  {}\n", l->level, l->name, l->detail);
  }
  return out;
}

// Without HOME, --db or a db key there is no database to look at.
std::optional<std::filesystem::path> db_path_if_any(Context& ctx) {
  try {
    return ctx.db_path();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::usage) throw;
    return std::nullopt;
  }
}

// Files other accounts can read are warnings, never failures.
void add_privacy_lines(Context& ctx, const config::Config& cfg, std::vector<config::CheckLine>& lines) {
  if (auto w = engine::exposed_config_warning(cfg)) lines.push_back({"privacy", "config", "warn", *w});
  auto db = db_path_if_any(ctx);
  if (auto w = db ? engine::exposed_database_warning(*db) : std::nullopt)
    lines.push_back({"privacy", "database", "warn", *w});
}

void check(Context& ctx, bool json) {
  const auto& cfg = ctx.config();
  auto lines = config::check(cfg);
  add_privacy_lines(ctx, cfg, lines);
  int fails = 0, warns = 0;
  for (const auto& l : lines) {
    fails += l.level == "FAIL";
    warns += l.level == "warn";
  }
  ctx.exit_code = fails ? 1 : 0;
  if (json) return print_json(lines_json(cfg, lines, fails == 0));
  print(render_lines(cfg, lines));
  std::string counts = fmt::format("{} volumes, {} destinations, {} nodes", cfg.volumes.size(),
                                   cfg.destinations.size(), cfg.nodes.size());
  if (fails) print(fmt::format("\n{} — {} problem(s), {} warning(s)\n", counts, fails, warns));
  else if (warns) print(fmt::format("\n{} — resolvable, {} warning(s)\n", counts, warns));
  else print(fmt::format("\n{} — all resolvable\n", counts));
}

}  // namespace

void add_config_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("config", "Inspect the configuration");
  auto json = std::make_shared<bool>(false);
  auto* chk = cmd->add_subcommand("check", "Validate the config file and check every path it names (read-only)");
  chk->add_flag("--json", *json, "Print JSON");
  chk->callback([&ctx, json] { check(ctx, *json); });
  cmd->callback([cmd] {
    if (cmd->get_subcommands().empty()) print(cmd->help());
  });
}

}  // namespace sq::cli
