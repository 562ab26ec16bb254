// squirrel init
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "config/starter.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/text.hpp"

namespace sq::cli {

namespace {

// The config's folder, created owner-only when it is missing (it is where
// the index database goes by default: every file name and hash).
void ensure_config_dir(const std::filesystem::path& dir) {
  if (dir.empty() || std::filesystem::is_directory(dir)) return;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    fail_errno(fmt::format("cannot create {} — create it, or pass --config with a path in an existing folder",
                           dir.string()),
               errno);
}

// Exclusive create: an existing config is never touched.
void write_new_config(const std::filesystem::path& path) {
  if (std::filesystem::exists(std::filesystem::symlink_status(path)))
    throw Error(ErrorKind::refused, fmt::format("{} already exists — squirrel init never overwrites a config; edit it, "
                                                "or pass --config with another path",
                                                path.string()));
  ensure_config_dir(path.parent_path());
  Fd dir = open_root(path.parent_path().empty() ? "." : path.parent_path());
  create_file_exclusive(dir.get(), path.filename().string(), config::starter_config());
  if (::fchmodat(dir.get(), path.filename().c_str(), 0600, 0) != 0)
    fail_errno(fmt::format("cannot make {} private — run `chmod 600 {}`", path.string(), path.string()), errno);
}

void run(Context& ctx) {
  auto path = ctx.config_path();
  write_new_config(path);
  const auto& cfg = ctx.config();  // the file just written must load as it is
  std::string vol = config::kStarterVolume, dest = config::kStarterDestination;
  print(fmt::format("wrote {}\n", path.string()));
  print(fmt::format("  config:      {}\n", path.string()));
  print(fmt::format("  database:    {} (created by the first backup)\n", ctx.db_path().string()));
  print(fmt::format("  volume:      {} at {}\n", vol, cfg.volume(vol)->path.string()));
  print(fmt::format("  destination: {}: copies of {} under {}/{}\n", dest, vol, cfg.destination(dest)->root, vol));
  print(fmt::format("next: edit the volume's path and the destination's root in {}, then run "
                    "`squirrel backup --init`\n",
                    path.string()));
}

}  // namespace

void add_init_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("init", "Write a commented starter config (never overwrites one)");
  cmd->callback([&ctx] { run(ctx); });
}

}  // namespace sq::cli
