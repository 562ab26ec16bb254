// squirrel destination reset <dest> [--dry-run | --yes]
// squirrel destination check <dest> [--json]
#include <fmt/format.h>

#include <algorithm>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "engine/destination_check.hpp"
#include "store/alarms.hpp"
#include "store/reset.hpp"

namespace sq::cli {

namespace {

struct ResetFlags {
  std::string destination;
  bool dry_run = false, yes = false;
};

std::string describe(const store::ResetCounts& c) {
  auto text = fmt::format("{} ledger path(s), {} evidence component(s), {} push-freshness row(s)", c.paths, c.vector,
                          c.freshness);
  // Only content-addressed and packed destinations have these.
  if (c.objects || c.packs) text += fmt::format(", {} object(s), {} pack(s)", c.objects, c.packs);
  return text;
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

// One line per finding; problems are answers here, not errors, so they go
// to stdout and only the exit status says "not ok".
void check(Context& ctx, const std::string& dest, bool json) {
  const auto& cfg = ctx.config();
  store::Db* db = ctx.db_exists() ? &ctx.existing_store().db() : nullptr;
  auto r = engine::check_destination(cfg, db, dest);
  ctx.exit_code = r.ok() ? 0 : 1;
  if (json) {
    auto findings = nlohmann::json::array();
    for (const auto& f : r.findings) findings.push_back({{"check", f.check}, {"level", f.level}, {"detail", f.detail}});
    return print_json({{"destination", r.destination}, {"ok", r.ok()}, {"findings", findings}});
  }
  int fails = 0, warns = 0;
  std::size_t width = 10;  // fits the local checks; sftp's server-hash is longer
  for (const auto& f : r.findings) width = std::max(width, f.check.size());
  for (const auto& f : r.findings) {
    fails += f.level == "FAIL";
    warns += f.level == "warn";
    print(fmt::format("{:<4}  {:<{}}  {}\n", f.level, f.check, width, f.detail));
  }
  print(fails || warns ? fmt::format("{}: {} problem(s), {} warning(s)\n", dest, fails, warns)
                       : fmt::format("{}: no problems found\n", dest));
}

}  // namespace

void add_destination_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<ResetFlags>();
  auto* cmd = app.add_subcommand("destination", "Check a destination, or manage what the index records about it");
  auto* r = cmd->add_subcommand("reset", "Forget a destination's ledger, evidence and push freshness (audited)");
  r->add_option("destination", f->destination, "Destination name")->required();
  auto* dry = r->add_flag("--dry-run", f->dry_run, "Only count what would be cleared");
  auto* yes = r->add_flag("--yes", f->yes, "Really clear it");
  dry->excludes(yes);
  r->callback([&ctx, f] { reset(ctx, *f); });
  auto check_dest = std::make_shared<std::string>();
  auto check_json = std::make_shared<bool>(false);
  auto* c = cmd->add_subcommand("check", "Is this destination a safe place for copies? One line per finding "
                                         "(read-only; exit 1 on a problem)");
  c->add_option("destination", *check_dest, "Destination name")->required();
  c->add_flag("--json", *check_json, "Print JSON");
  c->callback([&ctx, check_dest, check_json] { check(ctx, *check_dest, *check_json); });
  cmd->callback([cmd] {
    if (cmd->get_subcommands().empty()) print(cmd->help());
  });
}

}  // namespace sq::cli
