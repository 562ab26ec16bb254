#include "cli/replace_db.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "store/runs.hpp"

namespace sq::cli {

namespace {

// Another squirrel mid-run would keep writing into the database we replace.
// A database too damaged to read cannot tell; the person can, with --force.
void refuse_if_busy(Context& ctx, const std::string& retry) {
  std::optional<std::int64_t> running;
  try {
    auto& db = ctx.existing_store().db();
    store::reap_dead_owners(db);
    running = db.query_i64("SELECT id FROM runs WHERE status = 'running' ORDER BY id LIMIT 1");
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::corrupt) throw;
    throw Error(ErrorKind::refused,
                fmt::format("{} is too damaged to tell whether a squirrel run still uses it — if none is running, "
                            "run `{} --force`",
                            ctx.db_path().string(), retry));
  }
  if (running)
    throw Error(ErrorKind::refused, fmt::format("run {} is still running against this database — wait for it, or if "
                                                "its process is gone run `{} --force`",
                                                *running, retry));
}

}  // namespace

store::RestoreResult replace_database(Context& ctx, const std::filesystem::path& snapshot, bool force,
                                      const std::string& retry) {
  std::error_code ec;
  if (std::filesystem::exists(ctx.db_path(), ec) && !force) refuse_if_busy(ctx, retry);
  ctx.close_store();  // our own connection must not outlive the file it points at
  return store::restore_snapshot(snapshot, ctx.db_path());
}

}  // namespace sq::cli
