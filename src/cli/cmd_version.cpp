// squirrel version
#include <fmt/format.h>
#include <sqlite3.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "store/migrations.hpp"

namespace sq::cli {

void add_version_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("version", "Print the version and build facts");
  cmd->callback([&ctx] {
    print(fmt::format("squirrel v{}\n  schema: v{}\n  sqlite: {}\n  compiler: {}\n  platform: linux/{}\n",
                      SQUIRREL_VERSION, store::current_schema_version(), sqlite3_libversion(), __VERSION__,
#if defined(__x86_64__)
                      "amd64"
#elif defined(__aarch64__)
                      "arm64"
#else
                      "other"
#endif
                      ));
    ctx.exit_code = 0;
  });
}

}  // namespace sq::cli
