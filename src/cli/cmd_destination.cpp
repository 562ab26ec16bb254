// squirrel destination reset <dest> [--dry-run | --yes]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "store/alarms.hpp"
#include "store/reset.hpp"

namespace sq::cli {

namespace {

struct ResetFlags {
  std::string destination;
  bool dry_run = false, yes = false;
};

std::string describe(const store::ResetCounts& c) {
  return fmt::format("{} ledger path(s), {} evidence component(s), {} push-freshness row(s)", c.paths, c.vector,
                     c.freshness);
}

void require_known(const config::Config& cfg, const std::string& dest) {
  if (cfg.destination(dest) || cfg.node(dest)) return;
  throw Error(ErrorKind::not_found, fmt::format("unknown destination \"{}\" — declare it in {} (reset only clears "
                                                "state of configured destinations)",
                                                escape_for_display(dest), cfg.file.string()));
}

bool alarm_latched(store::Db& db, const std::string& dest) {
  for (const auto& a : store::list_alarms(db))
    if (a.destination == dest) return true;
  return false;
}

void reset(Context& ctx, const ResetFlags& f) {
  const auto& cfg = ctx.config();
  require_known(cfg, f.destination);
  if (!ctx.db_exists()) return print(fmt::format("nothing to reset for \"{}\" — the index is empty\n", f.destination));
  auto& db = ctx.existing_store().db();
  auto preview = store::reset_destination(db, f.destination, true);
  if (preview.counts.total() == 0)
    return print(fmt::format("nothing to reset for \"{}\" — no recorded state\n", f.destination));
  if (f.dry_run)
    return print(fmt::format("reset would clear {} for \"{}\"\n", describe(preview.counts), f.destination));
  if (!f.yes) {
    print(fmt::format("this will clear {} for \"{}\"; runs, the evidence log and any alarm are kept, and nothing at "
                      "the destination is touched\n",
                      describe(preview.counts), f.destination));
    throw Error(ErrorKind::usage, fmt::format("not reset — pass --yes to reset \"{}\" (or --dry-run to only count)",
                                              f.destination));
  }
  auto done = store::reset_destination(db, f.destination, false, operator_name());
  if (done.run_id == 0)
    return print(fmt::format("nothing to reset for \"{}\" — no recorded state\n", f.destination));
  print(fmt::format("reset destination \"{}\" (run {}): cleared {}\n", f.destination, done.run_id,
                    describe(done.counts)));
  print(fmt::format("next: `squirrel sync <volume> --to {}` copies every file again and rebuilds the evidence\n",
                    f.destination));
  if (alarm_latched(db, f.destination))
    print(fmt::format("the alarm on \"{}\" stays until a clean `squirrel verify {}` or `squirrel verify ack {}`\n",
                      f.destination, f.destination, f.destination));
}

}  // namespace

void add_destination_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<ResetFlags>();
  auto* cmd = app.add_subcommand("destination", "Manage what the index records about a destination");
  auto* r = cmd->add_subcommand("reset", "Forget a destination's ledger, evidence and push freshness (audited)");
  r->add_option("destination", f->destination, "Destination name")->required();
  auto* dry = r->add_flag("--dry-run", f->dry_run, "Only count what would be cleared");
  auto* yes = r->add_flag("--yes", f->yes, "Really clear it");
  dry->excludes(yes);
  r->callback([&ctx, f] { reset(ctx, *f); });
  cmd->callback([cmd] {
    if (cmd->get_subcommands().empty()) print(cmd->help());
  });
}

}  // namespace sq::cli
