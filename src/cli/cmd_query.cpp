// squirrel query <hash-or-path> [--history] | --duplicates | --missing | --from NODE   [--json]
#include <fmt/format.h>

#include "cli/context.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "store/files.hpp"
#include "store/remote_paths.hpp"
#include "store/volumes.hpp"

namespace sq::cli {

namespace {

struct QueryFlags {
  std::string target, from;
  bool history = false, duplicates = false, missing = false, json = false;
};

std::string full_path(const store::FileRow& r) { return (std::filesystem::path(r.volume_path) / r.path).string(); }

nlohmann::json row_json(const store::FileRow& r) {
  return {{"volume", r.volume_name},
          {"path", escape_for_display(r.path)},
          {"full", escape_for_display(full_path(r))},
          {"blake3", to_hex(r.hash)},
          {"size_bytes", r.size},
          {"mtime_ns", r.mtime_ns},
          {"status", r.status},
          {"first_seen_run", r.first_seen_run},
          {"last_seen_run", r.last_seen_run},
          {"status_changed_run", r.status_changed_run},
          {"indexed_at_ns", r.indexed_at_ns},
          {"origin_node", r.origin_node ? nlohmann::json(*r.origin_node) : nlohmann::json()},
          {"origin_run", r.origin_run ? nlohmann::json(*r.origin_run) : nlohmann::json()}};
}

void print_rows(const std::vector<store::FileRow>& rows, bool json) {
  if (json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : rows) arr.push_back(row_json(r));
    return print_json(arr);
  }
  for (const auto& r : rows)
    print(fmt::format("{}\t{}\t{}\t{}\n", r.status, escape_for_display(full_path(r)), r.size, to_hex(r.hash)));
}

void print_detail(const store::FileRow& r) {
  print(fmt::format("volume:        {}\nvolume_path:   {}\npath:          {}\nfull:          {}\nblake3:        {}\n"
                    "size_bytes:    {}\nmtime_ns:      {}\nstatus:        {}\nfirst_seen_run: {}\nlast_seen_run: {}\n"
                    "indexed_at:    {}\n",
                    r.volume_name, r.volume_path, escape_for_display(r.path), escape_for_display(full_path(r)),
                    to_hex(r.hash), r.size, r.mtime_ns, r.status, r.first_seen_run, r.last_seen_run,
                    rfc3339_utc(r.indexed_at_ns)));
}

// Where a version's copies are: "usb (live), usb (history run 10)".
std::string copies_text(const std::vector<store::VersionCopy>& copies) {
  std::string out;
  for (const auto& c : copies)
    out += (out.empty() ? "" : ", ") + c.destination +
           (c.live ? " (live)" : fmt::format(" (history run {})", c.displaced_run));
  return out.empty() ? "none" : out;
}

// Finds the indexed volume whose root holds `abs`, longest root first.
std::optional<std::pair<store::VolumeRow, std::string>> locate(store::Db& db, const std::filesystem::path& abs) {
  std::optional<std::pair<store::VolumeRow, std::string>> best;
  for (const auto& v : store::list_volumes(db, true)) {
    auto rel = abs.lexically_relative(v.path);
    if (rel.empty() || rel.native().starts_with("..") || rel == ".") continue;
    if (!best || v.path.size() > best->first.path.size()) best = {{v, rel.generic_string()}};
  }
  return best;
}

bool looks_like_path(const std::string& s) {
  std::error_code ec;
  return s.find('/') != std::string::npos || std::filesystem::exists(s, ec) || !digest_from_hex(s);
}

void by_path(Context& ctx, store::Db& db, const QueryFlags& f) {
  auto abs = config::expand_path(f.target);
  auto hit = locate(db, abs);
  auto row = hit ? store::live_row_by_path(db, hit->first.id, hit->second) : std::nullopt;
  if (!row)
    throw Error(ErrorKind::not_found, fmt::format("no row for path {} (not under any indexed volume, or never indexed)",
                                                  escape_for_display(abs.string())));
  auto history = f.history ? store::history_by_path(db, hit->first.id, hit->second) : std::vector<store::FileRow>{};
  auto copies = [&](const store::FileRow& h) { return store::copies_of_version(db, h.volume_id, h.path, h.content_id); };
  if (f.json) {
    auto j = row_json(*row);
    if (f.history) {
      j["history"] = nlohmann::json::array();
      for (const auto& h : history) j["history"].push_back(row_json(h));
      for (auto& h : j["history"]) h["copies"] = nlohmann::json::array();
      for (std::size_t i = 0; i < history.size(); ++i)
        for (const auto& c : copies(history[i]))
          j["history"][i]["copies"].push_back({{"destination", c.destination}, {"live", c.live},
                                               {"history_run", c.live ? nlohmann::json() : nlohmann::json(c.displaced_run)}});
    }
    return print_json(j);
  }
  print_detail(*row);
  if (!f.history) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : history)
    rows.push_back({std::to_string(h.first_seen_run), std::to_string(h.last_seen_run), h.status, to_hex(h.hash),
                    std::to_string(h.size), copies_text(copies(h))});
  print("\nhistory:\n" + render_table({"FIRST_RUN", "LAST_RUN", "STATUS", "BLAKE3", "SIZE", "COPIES"}, rows));
  (void)ctx;
}

void run(Context& ctx, const QueryFlags& f) {
  int modes = f.duplicates + f.missing + !f.from.empty();
  if (modes > 1) throw Error(ErrorKind::usage, "--duplicates, --missing and --from cannot be combined");
  if (modes == 1 && !f.target.empty())
    throw Error(ErrorKind::usage, "--duplicates, --missing and --from take no hash or path argument");
  if (modes == 0 && f.target.empty())
    throw Error(ErrorKind::usage, "give a BLAKE3 hash or a path, or one of --duplicates, --missing, --from NODE");
  if (!ctx.db_exists()) throw Error(ErrorKind::not_found, "the index is empty — run `squirrel index <volume>` first");
  auto& db = ctx.existing_store().db();
  if (f.duplicates) return print_rows(store::duplicate_rows(db, std::nullopt), f.json);
  if (f.missing) return print_rows(store::rows_with_status(db, std::nullopt, "missing"), f.json);
  if (!f.from.empty()) {
    auto node = db.query_i64("SELECT id FROM nodes WHERE name = ?", {store::Value{f.from}});
    if (!node) throw Error(ErrorKind::not_found, fmt::format("unknown node \"{}\"", escape_for_display(f.from)));
    return print_rows(store::rows_from_origin(db, *node), f.json);
  }
  if (looks_like_path(f.target)) return by_path(ctx, db, f);
  auto rows = store::rows_by_hash(db, *digest_from_hex(f.target));
  if (rows.empty()) throw Error(ErrorKind::not_found, fmt::format("no rows for blake3 {}", f.target));
  print_rows(rows, f.json);
}

}  // namespace

void add_query_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<QueryFlags>();
  auto* cmd = app.add_subcommand("query", "Look up a file by BLAKE3 hash or path, or list duplicates or missing files");
  cmd->add_option("target", f->target, "A 64-hex BLAKE3 hash or a path");
  cmd->add_flag("--history", f->history, "With a path: also list every earlier content of that path");
  cmd->add_flag("--duplicates", f->duplicates, "List present files whose content exists at more than one path");
  cmd->add_flag("--missing", f->missing, "List files flagged missing");
  cmd->add_option("--from", f->from, "List files whose content was introduced by node NODE");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([&ctx, f] { run(ctx, *f); });
}

}  // namespace sq::cli
