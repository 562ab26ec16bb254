// squirrel status [<volume>] [--json]
// Exit code 0 green (or neutral), 1 amber, 2 red — the light is the answer,
// so it is reported through the exit code without an "Error:" line.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/text.hpp"
#include "engine/privacy.hpp"
#include "engine/status.hpp"

namespace sq::cli {

namespace {

struct StatusFlags {
  std::string volume;
  bool json = false;
};

// ---- text helpers -------------------------------------------------------

constexpr std::int64_t kSecond = 1000000000LL;

// One unit, rounded down: "42s", "5m", "3h", "12d".
std::string age_text(std::int64_t ns) {
  std::int64_t s = std::max<std::int64_t>(ns, 0) / kSecond;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

// A configured limit in the largest unit that states it exactly.
std::string limit_text(std::int64_t ns) {
  constexpr std::pair<std::int64_t, const char*> kUnits[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
  for (const auto& [unit, name] : kUnits)
    if (ns % (unit * kSecond) == 0) return fmt::format("{}{}", ns / (unit * kSecond), name);
  return format_duration_ns(ns);
}

bool use_colour() { return ::isatty(STDOUT_FILENO) == 1 && !std::getenv("NO_COLOR"); }

std::string paint(const std::string& text, engine::Light l, bool colour) {
  if (!colour) return text;
  const char* code = l == engine::Light::red     ? "31"
                     : l == engine::Light::amber ? "33"
                     : l == engine::Light::green ? "32"
                                                 : "";
  return *code ? fmt::format("\033[{}m{}\033[0m", code, text) : text;
}

// ---- the grid -----------------------------------------------------------

std::string last_sync_cell(const engine::TargetStatus& t, std::int64_t now) {
  if (!t.last_sync) return "never";
  return fmt::format("{} ago (run {})", age_text(now - t.last_sync->at_ns), t.last_sync->id);
}

std::string durable_cell(const engine::VolumeStatus& v, const engine::TargetStatus& t) {
  if (t.durable) return *t.durable ? "yes" : "no";
  return v.last_index ? "n/a" : "—";  // nothing present, or nothing known yet
}

std::string evidence_cell(const engine::EvidenceStatus& e, std::int64_t now) {
  if (e.components == 0) return "—";
  std::string age = e.oldest_verified_at_ns ? age_text(now - *e.oldest_verified_at_ns) : "unknown";
  std::string max = e.max_age_ns ? limit_text(*e.max_age_ns) : "off";
  return fmt::format("{} / {}{}", age, max, e.stale ? " STALE" : "");
}

std::string method_cell(const engine::EvidenceStatus& e) {
  if (e.methods.empty()) return "—";
  std::string out;
  for (const auto& m : e.methods) out += (out.empty() ? "" : ",") + m;
  return out;
}

std::string index_line(const engine::VolumeStatus& v, std::int64_t now) {
  if (!v.last_index) return "  index: never\n";
  return fmt::format("  index: last run {}, {} ago, {}\n", v.last_index->id, age_text(now - v.last_index->at_ns),
                     store::to_string(v.last_index->status));
}

std::string offload_line(const engine::OffloadReadiness& o) {
  if (!o.has_policy) return "  offload: no policy\n";
  return fmt::format("  offloadable now: {} ({} files) of {} present ({} files)\n", format_bytes(o.ready_bytes),
                     o.ready_files, format_bytes(o.present_bytes), o.present_files);
}

void print_volume(const engine::VolumeStatus& v, std::int64_t now, bool colour) {
  print(fmt::format("\n{}  {}  {}\n", v.name, escape_for_display(v.path),
                    paint(fmt::format("[{}]", engine::to_string(v.light)), v.light, colour)));
  print(index_line(v, now));
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : v.targets)
    rows.push_back({t.name, std::string(engine::to_string(t.role)), last_sync_cell(t, now),
                    std::string(engine::to_string(t.state)), durable_cell(v, t), method_cell(t.evidence),
                    evidence_cell(t.evidence, now)});
  if (!rows.empty()) {
    std::istringstream table(
        render_table({"TARGET", "ROLE", "LAST SYNC", "STATE", "DURABLE", "METHOD", "EVIDENCE"}, rows));
    for (std::string line; std::getline(table, line);) print("  " + line + "\n");
  }
  print(offload_line(v.offload));
  if (v.unprotected) print(fmt::format("  unprotected: {} under reserved names, never copied\n", v.unprotected));
  for (const auto& why : v.reasons) print("  why: " + why + "\n");
  for (const auto& t : v.targets)
    for (const auto& why : t.reasons) print("  why: " + why + "\n");
  for (const auto& t : v.targets)
    for (const auto& note : t.warnings) print("  warning: " + note + "\n");
}

void print_report(const engine::StatusReport& r) {
  bool colour = use_colour();
  for (const auto& a : r.alarms)
    print(paint(fmt::format("ALARM {}: {} — {} (raised by run {}, {} ago); run `squirrel verify {}`, or `squirrel "
                            "verify ack {}` once you have looked\n",
                            a.destination, a.kind, a.detail, a.raised_run_id, age_text(r.now_ns - a.raised_at_ns),
                            a.destination, a.destination),
                engine::Light::red, colour));
  for (const auto& w : r.warnings) print("warning: " + w + "\n");
  if (r.volumes.empty()) print("no volumes configured\n");
  for (const auto& v : r.volumes) print_volume(v, r.now_ns, colour);
  print(fmt::format("\noverall: {}\n", paint(std::string(engine::to_string(r.overall)), r.overall, colour)));
}

// ---- JSON ---------------------------------------------------------------

nlohmann::json opt_json(const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

nlohmann::json run_json(const std::optional<engine::RunBrief>& r, std::int64_t now) {
  if (!r) return nullptr;
  return {{"id", r->id}, {"status", store::to_string(r->status)}, {"at_ns", r->at_ns}, {"age_ns", now - r->at_ns},
          {"error", r->error}};
}

nlohmann::json target_json(const engine::TargetStatus& t, std::int64_t now) {
  const auto& e = t.evidence;
  nlohmann::json evidence{{"components", e.components},
                          {"methods", e.methods},
                          {"age_unknown", e.age_unknown},
                          {"oldest_verified_at_ns", opt_json(e.oldest_verified_at_ns)},
                          {"age_ns", e.oldest_verified_at_ns ? nlohmann::json(now - *e.oldest_verified_at_ns)
                                                             : nlohmann::json()},
                          {"max_age_ns", opt_json(e.max_age_ns)},
                          {"stale", e.stale}};
  return {{"name", t.name},
          {"role", engine::to_string(t.role)},
          {"kind", engine::to_string(t.kind)},
          {"last_sync", run_json(t.last_sync, now)},
          {"state", engine::to_string(t.state)},
          {"durable", t.durable ? nlohmann::json(*t.durable) : nullptr},
          {"evidence", evidence},
          {"light", engine::to_string(t.light)},
          {"reasons", t.reasons},
          {"volatile_fs", t.volatile_fs.empty() ? nlohmann::json() : nlohmann::json(t.volatile_fs)},
          {"warnings", t.warnings}};
}

nlohmann::json drift_json(const std::optional<engine::TreeDrift>& d) {
  if (!d) return nullptr;
  return {{"examined", d->examined}, {"changed", d->changed}, {"first", escape_for_display(d->first)},
          {"complete", d->complete}};
}

nlohmann::json volume_json(const engine::VolumeStatus& v, std::int64_t now) {
  auto targets = nlohmann::json::array();
  for (const auto& t : v.targets) targets.push_back(target_json(t, now));
  const auto& o = v.offload;
  return {{"name", v.name},
          {"path", escape_for_display(v.path)},
          {"light", engine::to_string(v.light)},
          {"indexed", v.indexed},
          {"last_index", run_json(v.last_index, now)},
          {"targets", targets},
          {"offload", {{"has_policy", o.has_policy}, {"present_files", o.present_files},
                       {"present_bytes", o.present_bytes}, {"ready_files", o.ready_files},
                       {"ready_bytes", o.ready_bytes}}},
          {"unprotected", v.unprotected},
          {"drift", drift_json(v.drift)},
          {"reasons", v.reasons}};
}

nlohmann::json report_json(const engine::StatusReport& r) {
  auto alarms = nlohmann::json::array();
  for (const auto& a : r.alarms)
    alarms.push_back({{"destination", a.destination}, {"kind", a.kind}, {"detail", a.detail},
                      {"raised_run_id", a.raised_run_id}, {"raised_at_ns", a.raised_at_ns}});
  auto volumes = nlohmann::json::array();
  for (const auto& v : r.volumes) volumes.push_back(volume_json(v, r.now_ns));
  return {{"now_ns", r.now_ns},
          {"scope", r.scope ? nlohmann::json(*r.scope) : nullptr},
          {"overall", engine::to_string(r.overall)},
          {"exit_code", engine::exit_code_for(r.overall)},
          {"alarms", alarms},
          {"warnings", r.warnings},
          {"volumes", volumes}};
}

void run(Context& ctx, const StatusFlags& f) {
  const auto& cfg = ctx.config();
  // Before the store is opened: it makes a -wal and -shm of its own.
  auto warnings = engine::privacy_warnings(cfg, ctx.db_path());
  // A question never creates the index: without one, everything is unindexed.
  store::Store* st = ctx.db_exists() ? &ctx.existing_store() : nullptr;
  auto scope = f.volume.empty() ? std::nullopt : std::optional(f.volume);
  auto report = engine::build_status(cfg, st, scope, now_ns());
  report.warnings = std::move(warnings);
  if (f.json) print_json(report_json(report));
  else print_report(report);
  ctx.exit_code = engine::exit_code_for(report.overall);
}

}  // namespace

void add_status_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<StatusFlags>();
  auto* cmd = app.add_subcommand("status", "Am I safe? Sync, evidence and offload readiness per volume (exit 0/1/2)");
  cmd->add_option("volume", f->volume, "Only this volume (default: every configured volume)");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
