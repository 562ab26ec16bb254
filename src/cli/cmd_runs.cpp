// squirrel runs [--volume NAME] [--limit N] [--failed] [--changes] [--json]
// squirrel runs fail <id>
#include <fmt/format.h>

#include <charconv>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "store/runs.hpp"
#include "store/volumes.hpp"

namespace sq::cli {

namespace {

struct RunsFlags {
  std::string volume;
  int limit = 20;
  bool failed = false, changes = false, json = false;
  std::string fail_id;
};

std::string truncate_runes(const std::string& s, std::size_t n) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && count++ == n) return s.substr(0, i) + "…";
  }
  return s;
}

nlohmann::json run_json(const store::RunRow& r) {
  nlohmann::json j{{"id", r.id},
                   {"kind", store::to_string(r.kind)},
                   {"volume", r.volume_name.empty() ? nlohmann::json() : nlohmann::json(r.volume_name)},
                   {"destination", r.destination.empty() ? nlohmann::json() : nlohmann::json(r.destination)},
                   {"started_at", rfc3339_utc(r.started_at_ns)},
                   {"started_at_ns", r.started_at_ns},
                   {"status", store::to_string(r.status)},
                   {"file_count", r.file_count},
                   {"error", r.error}};
  j["ended_at_ns"] = r.ended_at_ns ? nlohmann::json(*r.ended_at_ns) : nlohmann::json();
  j["changed_count"] = r.changed_count ? nlohmann::json(*r.changed_count) : nlohmann::json();
  return j;
}

std::vector<std::string> run_cells(const store::RunRow& r) {
  std::string duration = r.ended_at_ns ? format_duration_ns(*r.ended_at_ns - r.started_at_ns) : "—";
  return {std::to_string(r.id),
          std::string(store::to_string(r.kind)),
          r.volume_name.empty() ? "—" : r.volume_name,
          r.destination.empty() ? "—" : r.destination,
          rfc3339_utc(r.started_at_ns),
          duration,
          std::string(store::to_string(r.status)),
          std::to_string(r.file_count),
          r.error.empty() ? "" : truncate_runes(escape_for_display(r.error), 60)};
}

void list(Context& ctx, const RunsFlags& f) {
  if (f.limit < 0)
    throw Error(ErrorKind::usage, "--limit cannot be negative — give a positive number, or 0 for no limit");
  if (!ctx.db_exists()) {
    if (f.json) print_json(nlohmann::json::array());
    else print("no runs yet — the index database does not exist\n");
    return;
  }
  auto& db = ctx.existing_store().db();
  store::RunFilter filter{std::nullopt, f.limit, f.failed, f.changes};
  if (!f.volume.empty()) {
    auto v = store::find_volume(db, f.volume);
    if (!v) throw config::unknown_volume(f.volume, ctx.config_path());
    filter.volume_id = v->id;
  }
  auto runs = store::list_runs(db, filter);
  if (f.json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : runs) arr.push_back(run_json(r));
    print_json(arr);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs) rows.push_back(run_cells(r));
  print(render_table({"ID", "KIND", "VOLUME", "DESTINATION", "STARTED", "DURATION", "STATUS", "FILES", "ERROR"}, rows));
}

std::int64_t parse_run_id(const std::string& s) {
  std::int64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || p != s.data() + s.size() || id <= 0)
    throw Error(ErrorKind::usage, fmt::format("invalid run id \"{}\" — pass the number shown by `squirrel runs`",
                                              escape_for_display(s)));
  return id;
}

void fail_one(Context& ctx, const std::string& raw_id) {
  auto id = parse_run_id(raw_id);
  auto& db = ctx.existing_store().db();
  try {
    store::fail_run_manually(db, id, operator_name());
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::already_finished) {
      auto r = store::get_run(db, id);
      throw Error(ErrorKind::refused, fmt::format("run {} is already {}, refusing to overwrite", id,
                                                  r ? store::to_string(r->status) : "finished"));
    }
    if (e.kind() == ErrorKind::not_found) throw Error(ErrorKind::not_found, fmt::format("no run with id {}", id));
    throw;
  }
  print(fmt::format("marked run {} as failed\n", id));
}

}  // namespace

void add_runs_command(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<RunsFlags>();
  auto* cmd = app.add_subcommand("runs", "List runs, newest first");
  cmd->add_option("--volume", flags->volume, "Only runs of this volume");
  cmd->add_option("--limit", flags->limit, "How many runs to show (default 20; 0 shows all)");
  cmd->add_flag("--failed", flags->failed, "Only failed, refused, aborted and partial runs");
  cmd->add_flag("--changes", flags->changes, "Hide runs that changed nothing");
  cmd->add_flag("--json", flags->json, "Print JSON");
  auto* fail = cmd->add_subcommand("fail", "Mark a running run as failed (for a run stuck after a crash)");
  fail->add_option("id", flags->fail_id, "Run id")->required();
  fail->callback([&ctx, flags] { fail_one(ctx, flags->fail_id); });
  cmd->callback([&ctx, flags, cmd] {
    if (!cmd->get_subcommands().empty()) return;
    list(ctx, *flags);
  });
}

}  // namespace sq::cli
