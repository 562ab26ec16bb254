// squirrel volumes [--json]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/text.hpp"
#include "store/files.hpp"
#include "store/volumes.hpp"

namespace sq::cli {

namespace {

void list(Context& ctx, bool json, bool all) {
  std::vector<store::VolumeRow> rows;
  std::vector<std::int64_t> counts;
  if (ctx.db_exists()) {
    auto& db = ctx.existing_store().db();
    rows = store::list_volumes(db, all);
    for (const auto& v : rows) counts.push_back(store::count_live(db, v.id));
  }
  if (json) {
    auto arr = nlohmann::json::array();
    for (std::size_t i = 0; i < rows.size(); ++i)
      arr.push_back({{"id", rows[i].id}, {"name", rows[i].name}, {"path", rows[i].path}, {"files", counts[i]},
                     {"created_at", rfc3339_utc(rows[i].created_at_ns)},
                     {"forgotten_run", rows[i].forgotten_run ? nlohmann::json(*rows[i].forgotten_run) : nlohmann::json()}});
    return print_json(arr);
  }
  for (std::size_t i = 0; i < rows.size(); ++i)
    print(fmt::format("{}\t{}\t{}\t{} files{}\n", rows[i].id, rows[i].name, rows[i].path, counts[i],
                      rows[i].forgotten_run ? fmt::format("\tforgotten (run {})", *rows[i].forgotten_run) : ""));
}

}  // namespace

void add_volumes_command(CLI::App& app, Context& ctx) {
  auto json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("volumes", "List indexed volumes");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_flag("--all", *all, "Also list forgotten volumes");
  cmd->callback([&ctx, json, all, cmd] {
    if (!cmd->get_subcommands().empty()) return;
    list(ctx, *json, *all);
  });
  add_volumes_move_command(*cmd, ctx);
  add_volumes_adopt_command(*cmd, ctx);
  add_volumes_forget_command(*cmd, ctx);
}

}  // namespace sq::cli
