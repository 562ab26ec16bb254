// squirrel volumes adopt <name>
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/process.hpp"
#include "engine/volume.hpp"

namespace sq::cli {

namespace {

void run(Context& ctx, const std::string& name) {
  auto r = engine::adopt_into_this_database(ctx.config(), ctx.store().db(), name, operator_name());
  print(fmt::format("volume \"{}\" now belongs to this index database (was {}) (run {})\n", name,
                    r.previous_owner.empty() ? "unowned" : r.previous_owner, r.run_id));
}

}  // namespace

void add_volumes_adopt_command(CLI::App& volumes, Context& ctx) {
  auto name = std::make_shared<std::string>();
  auto* cmd = volumes.add_subcommand("adopt", "Move a volume owned by another index database to this one, deliberately");
  cmd->add_option("name", *name, "Volume name")->required();
  cmd->callback([&ctx, name] { run(ctx, *name); });
}

}  // namespace sq::cli
