// squirrel volumes forget <name>
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "engine/volume.hpp"

namespace sq::cli {

namespace {

void run(Context& ctx, const std::string& name) {
  auto r = engine::forget_volume(ctx.config(), ctx.existing_store().db(), name, operator_name());
  if (r.already_forgotten)
    return print(fmt::format("volume \"{}\" was already forgotten (run {})\n", escape_for_display(name), r.run_id));
  print(fmt::format("volume \"{}\" forgotten: no longer listed; its history and runs are kept (run {})\n",
                    escape_for_display(name), r.run_id));
}

}  // namespace

void add_volumes_forget_command(CLI::App& volumes, Context& ctx) {
  auto name = std::make_shared<std::string>();
  auto* cmd = volumes.add_subcommand("forget", "Drop a volume that left the config from the list, keeping its history");
  cmd->add_option("name", *name, "Volume name")->required();
  cmd->callback([&ctx, name] { run(ctx, *name); });
}

}  // namespace sq::cli
