// squirrel verify [<destination>] [--full] [--share PCT] [--download] [-P] [--json]
// squirrel verify ack <destination>
#include <fmt/format.h>

#include <cstdio>

#include "cli/context.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "engine/sync/verify.hpp"

namespace sq::cli {

namespace {

struct VerifyFlags {
  std::string destination, ack_destination;
  bool full = false, progress = false, json = false, download = false;
  double share = 10;
};

nlohmann::json report_json(const engine::sync::VerifyReport& r) {
  auto findings = nlohmann::json::array();
  for (const auto& f : r.findings)
    findings.push_back({{"volume", f.volume}, {"path", escape_for_display(f.path)}, {"kind", f.kind}, {"detail", f.detail}});
  return {{"destination", r.destination}, {"runs", r.run_ids},         {"checked", r.checked},
          {"rehashed", r.rehashed},       {"bytes_rehashed", r.bytes_rehashed}, {"bytes_stored", r.bytes_stored},
          {"findings", findings},         {"alarm_raised", r.alarm_raised}, {"alarm_cleared", r.alarm_cleared},
          {"refreshed", r.refreshed_volumes},   {"unchecked", r.unchecked}, {"method", r.method},
          {"orphans", r.orphans},
          {"volatile_fs", r.volatile_fs.empty() ? nlohmann::json() : nlohmann::json(r.volatile_fs)}};
}

void print_report(const engine::sync::VerifyReport& r) {
  for (const auto& f : r.findings) {
    // An object of a content-addressed destination belongs to no one volume.
    auto where = f.volume.empty() ? escape_for_display(f.path) : f.volume + "/" + escape_for_display(f.path);
    // An object name is never replaced: a damaged one must go by hand first.
    const char* fix = f.volume.empty() && f.kind == "changed"
                          ? "look at it and remove it by hand, then the next sync writes it again"
                          : "the next sync rewrites it";
    std::fprintf(stderr, "ALARM: %s: %s %s — %s; %s, offload no longer trusts %s\n", r.destination.c_str(),
                 where.c_str(), f.kind.c_str(), f.detail.c_str(), fix, r.destination.c_str());
  }
  print(fmt::format("verify {}: checked={} rehashed={} ({} of {}) findings={}{}{}{}\n", r.destination, r.checked,
                    r.rehashed, format_bytes(r.bytes_rehashed), format_bytes(r.bytes_stored), r.findings.size(),
                    r.unchecked ? fmt::format(" unchecked={}", r.unchecked) : "",
                    r.orphans ? fmt::format(" unrecorded-objects={}", r.orphans) : "",
                    r.alarm_cleared ? " (alarm cleared)" : ""));
  if (r.unchecked)
    std::fprintf(stderr, "warning: %s could not hash %lld copy(ies) itself; they were neither confirmed nor found "
                         "damaged — run `squirrel verify %s --download` to read them back over the wire\n",
                 r.destination.c_str(), static_cast<long long>(r.unchecked), r.destination.c_str());
  if (!r.volatile_fs.empty())
    std::fprintf(stderr, "warning: %s is on %s, which does not survive a reboot; its copies stay presence+size and "
                         "never count as durable\n", r.destination.c_str(), r.volatile_fs.c_str());
}

std::vector<std::string> targets(const config::Config& cfg, const VerifyFlags& f) {
  if (!f.destination.empty()) return {f.destination};
  std::vector<std::string> out;
  for (const auto& [name, d] : cfg.destinations)
    if (d.native_mirror() || d.native_content() || d.native_packed()) out.push_back(name);
  if (out.empty())
    throw Error(ErrorKind::usage, "no local or sftp mirror or content-addressed destinations to verify");
  return out;
}

void run(Context& ctx, const VerifyFlags& f) {
  if (!(f.share > 0 && f.share <= 100)) throw Error(ErrorKind::usage, "--share must be a percentage in (0, 100]");
  const auto& cfg = ctx.config();
  engine::sync::VerifyOptions opts;
  opts.full = f.full;
  opts.share = f.share / 100.0;
  opts.download = f.download;
  auto out = nlohmann::json::array();
  ProgressLine progress(f.progress || stderr_is_tty());
  for (const auto& dest : targets(cfg, f)) {
    auto listener = [&progress, &dest](const engine::ProgressEvent& e) {
      progress.update(fmt::format("verify {}: {}", dest, e.stage),
                      {e.files_done, e.files_total, e.bytes_done, e.bytes_total}, e.path);
    };
    try {
      auto r = engine::sync::run_verify(cfg, ctx.store(), dest, opts, listener);
      progress.clear();
      if (!r.findings.empty()) ctx.exit_code = 1;
      if (f.json) out.push_back(report_json(r));
      else print_report(r);
    } catch (const Error& e) {
      progress.clear();
      ctx.exit_code = 1;
      std::fprintf(stderr, "Error: verify %s: %s\n", dest.c_str(), e.what());
      if (f.json) out.push_back({{"destination", dest}, {"error", e.what()}});
    }
  }
  if (f.json) print_json(out);
}

void ack(Context& ctx, const std::string& dest) {
  if (!ctx.config().destination(dest))
    throw Error(ErrorKind::not_found, fmt::format("unknown destination \"{}\"", escape_for_display(dest)));
  if (engine::sync::acknowledge_alarm(ctx.store().db(), dest, operator_name()))
    print(fmt::format("alarm on {} acknowledged by {}\n", dest, operator_name().empty() ? "(unknown)" : operator_name()));
  else
    print(fmt::format("no alarm on {}\n", dest));
}

}  // namespace

void add_verify_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<VerifyFlags>();
  auto* cmd = app.add_subcommand("verify", "Re-check the copies at a destination against the ledger");
  cmd->add_option("destination", f->destination, "Destination (default: every local and sftp mirror)");
  cmd->add_flag("--full", f->full, "Re-hash every copy instead of about a tenth of the bytes");
  cmd->add_option("--share", f->share, "Percentage of stored bytes to re-hash (default 10)");
  cmd->add_flag("--download", f->download,
                "Read the re-hashed copies back over the wire and BLAKE3 them here (an SFTP server that cannot hash)");
  cmd->add_flag("-P,--progress", f->progress, "Show a live progress line even when stderr is not a terminal");
  cmd->add_flag("--json", f->json, "Print JSON");
  auto* a = cmd->add_subcommand("ack", "Acknowledge a destination alarm (audited with your user name)");
  a->add_option("destination", f->ack_destination, "Destination")->required();
  a->callback([&ctx, f] { ack(ctx, f->ack_destination); });
  cmd->callback([&ctx, f, cmd] {
    if (!cmd->get_subcommands().empty()) return;
    run(ctx, *f);
  });
}

}  // namespace sq::cli
