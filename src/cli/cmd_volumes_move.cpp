// squirrel volumes move <name> <new-path>
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/process.hpp"
#include "engine/volume.hpp"

namespace sq::cli {

namespace {

struct MoveFlags {
  std::string name, path;
};

void run(Context& ctx, const MoveFlags& f) {
  auto target = config::expand_path(f.path);
  auto r = engine::move_volume(ctx.existing_store().db(), f.name, target, operator_name());
  print(fmt::format("moved volume \"{}\" from {} to {} (run {})\n", f.name, r.from, r.to, r.run_id));
  auto* cfg = ctx.config_if_present();
  const auto* vol = cfg ? cfg->volume(f.name) : nullptr;
  if (vol && vol->path != target)
    warn(fmt::format("the config still says {} for \"{}\" — set path = \"{}\" in {}", vol->path.string(), f.name,
                     target.string(), cfg->file.string()));
}

}  // namespace

void add_volumes_move_command(CLI::App& volumes, Context& ctx) {
  auto f = std::make_shared<MoveFlags>();
  auto* cmd = volumes.add_subcommand("move", "Re-point a volume at a new path that holds its marker (old path untouched)");
  cmd->add_option("name", f->name, "Volume name")->required();
  cmd->add_option("new-path", f->path, "The volume's new root directory")->required();
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
