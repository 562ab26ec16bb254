#include "engine/volume.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/text.hpp"
#include "engine/layout_check.hpp"
#include "store/runs.hpp"

namespace sq::engine {

std::string render_marker(const Marker& m) {
  nlohmann::ordered_json j;
  j["volume"] = m.volume;
  j["node"] = m.node;
  j["version"] = SQUIRREL_VERSION;
  j["created_at"] = rfc3339_nano_utc(m.created_at_ns);
  j["created_at_ns"] = m.created_at_ns;
  if (m.index_db) j["index_db"] = *m.index_db;
  return go_json(j.dump()) + "\n";
}

// Only `volume` is checked, as the reference does; the other fields are
// read when they have the expected type and ignored otherwise.
std::optional<Marker> parse_marker(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("volume") || !j["volume"].is_string()) return std::nullopt;
  Marker m;
  m.volume = j["volume"].get<std::string>();
  if (m.volume.empty()) return std::nullopt;
  if (j.contains("created_at_ns") && j["created_at_ns"].is_number_integer())
    m.created_at_ns = j["created_at_ns"].get<std::int64_t>();
  else if (j.contains("created_at") && j["created_at"].is_string())
    m.created_at_ns = parse_rfc3339_ns(j["created_at"].get<std::string>()).value_or(0);
  if (j.contains("node") && j["node"].is_string()) m.node = j["node"].get<std::string>();
  if (j.contains("index_db") && j["index_db"].is_string()) m.index_db = j["index_db"].get<std::string>();
  return m;
}

namespace {

const config::Volume& declared(const config::Config& cfg, const std::string& name) {
  if (auto* v = cfg.volume(name)) return *v;
  throw config::unknown_volume(name, cfg.file);
}

void check_recorded_path(const store::VolumeRow& row, const std::filesystem::path& configured) {
  if (auto why = path_disagreement(row, configured)) throw Error(ErrorKind::refused, *why);
}

// An unreadable marker refuses: it must never look like "no marker yet".
std::optional<Marker> read_marker(int root, const std::string& volume, const std::filesystem::path& path) {
  std::optional<std::string> text;
  try {
    text = read_small_file(root, kMarkerName);
  } catch (const Error& e) {
    throw Error(ErrorKind::refused, fmt::format("cannot read the volume marker of \"{}\" at {}: {} — fix access to "
                                                "it and retry",
                                                volume, path.string(), e.what()));
  }
  if (!text) return std::nullopt;
  auto m = parse_marker(*text);
  if (!m)
    throw Error(ErrorKind::refused, fmt::format("{}/{} is not a valid squirrel marker — inspect it; squirrel never "
                                                "rewrites it",
                                                path.string(), kMarkerName));
  return m;
}

}  // namespace

ResolvedVolume resolve_volume(const config::Config& cfg, store::Db& db, const std::string& name, ResolveMode mode) {
  const auto& vol = declared(cfg, name);
  require_volume_layout(cfg, name);
  ResolvedVolume r;
  r.name = name;
  r.path = vol.path;
  r.row = store::find_volume(db, name);
  if (r.row) check_recorded_path(*r.row, vol.path);
  if (!r.row && mode == ResolveMode::existing)
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" has never been indexed — run `squirrel index {}` first",
                                                name, name));
  std::error_code ec;
  if (!std::filesystem::is_directory(vol.path, ec))
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" path {} is not an accessible directory — is the disk "
                                                "mounted?",
                                                name, vol.path.string()));
  r.root = open_root(vol.path);
  auto marker = read_marker(r.root.get(), name, vol.path);
  if (marker && marker->volume != name)
    throw Error(ErrorKind::refused, fmt::format("{} belongs to volume \"{}\" (its .squirrel-volume says so), not \"{}\" "
                                                "— point the config at the right directory",
                                                vol.path.string(), escape_for_display(marker->volume), name));
  if (!marker && r.row)
    throw Error(ErrorKind::refused,
                fmt::format("volume \"{}\" was indexed before but {} has no .squirrel-volume marker — is the right "
                            "disk mounted? squirrel will not treat it as empty",
                            name, vol.path.string()));
  if (marker && marker->index_db && *marker->index_db != store::database_identity(db))
    throw Error(ErrorKind::refused,
                fmt::format("{} belongs to another index database (its marker names {}, this one is {}) — use that "
                            "database (--db), or run `squirrel volumes adopt {}` to move the volume here deliberately",
                            vol.path.string(), escape_for_display(*marker->index_db), store::database_identity(db),
                            name));
  r.marker_present = marker.has_value();
  return r;
}

std::vector<std::string> clean_selectors(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (auto s : raw) {
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    if (s != "." && !is_clean_relative(s))
      throw Error(ErrorKind::usage, fmt::format("\"{}\" must be a path inside the volume (relative, no `..`), or `.` "
                                                "for all of it",
                                                escape_for_display(s)));
    out.push_back(s);
  }
  return out;
}

// The marker goes first: a crash between the two leaves a marker naming
// this volume and no row, which the next index accepts; the reverse order
// would leave a row without a marker, which refuses forever.
void adopt_volume(store::Db& db, ResolvedVolume& v) {
  if (!v.marker_present) {
    create_file_exclusive(v.root.get(), kMarkerName,
                          render_marker({v.name, now_ns(), store::database_identity(db), store::self_node_name(db)}));
    v.marker_present = true;
  }
  if (!v.row) {
    store::Tx tx(db);
    v.row = store::create_volume(db, v.name, v.path.string());
    tx.commit();
  }
}

}  // namespace sq::engine

namespace sq::engine {

namespace {

void require_marker_at(const std::filesystem::path& path, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::refused, fmt::format("{} is not an accessible directory — mount or create it first",
                                                path.string()));
  Fd root = open_root(path);
  auto marker = read_marker(root.get(), name, path);
  if (!marker)
    throw Error(ErrorKind::refused,
                fmt::format("{} has no .squirrel-volume marker — move the volume's files including the marker there "
                            "first; squirrel only re-points a volume at a tree that is provably the same volume",
                            path.string()));
  if (marker->volume != name)
    throw Error(ErrorKind::refused, fmt::format("the marker at {} names volume \"{}\", not \"{}\"", path.string(),
                                                escape_for_display(marker->volume), name));
}

}  // namespace

MoveResult move_volume(store::Db& db, const std::string& name, const std::filesystem::path& new_path,
                       const std::string& operator_name) {
  auto row = store::find_volume(db, name);
  if (!row) throw Error(ErrorKind::not_found, fmt::format("volume \"{}\" is not in the index — see `squirrel volumes`",
                                                          escape_for_display(name)));
  MoveResult r{row->path, new_path.string(), 0};
  if (r.from == r.to) throw Error(ErrorKind::usage, fmt::format("volume \"{}\" is already at {}", name, r.to));
  require_marker_at(new_path, name);
  r.run_id = store::begin_run_or_throw(db, {store::RunKind::audit, row->id, ""});
  store::finish_record(db, store::kRunsTable, r.run_id, "success", {{"file_count", store::Value{std::int64_t{0}}}},
                       [&](store::Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                         d.execute("UPDATE volumes SET path = ? WHERE id = ?", {store::Value{r.to}, store::Value{row->id}});
                         store::append_audit(d, id, "volume-move",
                                             operator_name.empty() ? std::nullopt : std::optional(operator_name), at,
                                             fmt::format("{} -> {}", r.from, r.to));
                         store::append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                       });
  return r;
}

namespace {

// Writes the new marker beside the old one, flushed, then renames it over:
// at every instant the volume holds one whole marker.
void replace_marker(int root, const Marker& m) {
  std::string tmp = fmt::format("{}.adopt-{}", kMarkerName, ::getpid());
  create_file_exclusive(root, tmp, render_marker(m));
  if (::renameat(root, tmp.c_str(), root, kMarkerName) != 0 || ::fsync(root) != 0) {
    int err = errno;
    ::unlinkat(root, tmp.c_str(), 0);
    throw Error(ErrorKind::io, fmt::format("cannot replace the volume marker: {}", std::strerror(err)));
  }
}

}  // namespace

AdoptResult adopt_into_this_database(const config::Config& cfg, store::Db& db, const std::string& name,
                                     const std::string& operator_name) {
  const auto& vol = declared(cfg, name);
  std::error_code ec;
  if (!std::filesystem::is_directory(vol.path, ec))
    throw Error(ErrorKind::refused, fmt::format("{} is not an accessible directory — mount it first", vol.path.string()));
  Fd root = open_root(vol.path);
  auto marker = read_marker(root.get(), name, vol.path);
  if (!marker || marker->volume != name)
    throw Error(ErrorKind::refused, fmt::format("{} holds no marker naming volume \"{}\" — nothing to adopt",
                                                vol.path.string(), name));
  auto self = store::database_identity(db);
  if (marker->index_db == self)
    throw Error(ErrorKind::usage, fmt::format("volume \"{}\" already belongs to this index database", name));
  auto row = store::find_volume(db, name);
  if (row) check_recorded_path(*row, vol.path);
  AdoptResult r{marker->index_db.value_or(""), 0};
  r.run_id = store::begin_run_or_throw(db, {store::RunKind::audit, row ? std::optional(row->id) : std::nullopt, ""});
  Marker adopted = *marker;  // the same marker, now owned by this database
  adopted.index_db = self;
  replace_marker(root.get(), adopted);
  store::finish_record(db, store::kRunsTable, r.run_id, "success", {{"file_count", store::Value{std::int64_t{0}}}},
                       [&](store::Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                         store::append_audit(d, id, "volume-adopt",
                                             operator_name.empty() ? std::nullopt : std::optional(operator_name), at,
                                             fmt::format("{} at {}: index database {} -> {}", name, vol.path.string(),
                                                         r.previous_owner.empty() ? "(none)" : r.previous_owner, self));
                         store::append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                       });
  return r;
}

ForgetResult forget_volume(const config::Config& cfg, store::Db& db, const std::string& name,
                           const std::string& operator_name) {
  if (cfg.volume(name))
    throw Error(ErrorKind::refused, fmt::format("volume \"{}\" is still declared in {} — remove it from the config "
                                                "first; forget drops only a volume that left it",
                                                escape_for_display(name), cfg.file.string()));
  auto row = store::find_volume(db, name);
  if (!row)
    throw Error(ErrorKind::not_found, fmt::format("the index holds no volume \"{}\" — see `squirrel volumes --all`",
                                                  escape_for_display(name)));
  if (row->forgotten_run) return {*row->forgotten_run, true};
  ForgetResult r;
  r.run_id = store::begin_run_or_throw(db, {store::RunKind::audit, row->id, ""});
  store::finish_record(db, store::kRunsTable, r.run_id, "success", {{"file_count", store::Value{std::int64_t{0}}}},
                       [&](store::Db& d, std::int64_t id, std::int64_t at, std::string_view status) {
                         store::set_forgotten(d, row->id, id);
                         store::append_audit(d, id, "volume-forget",
                                             operator_name.empty() ? std::nullopt : std::optional(operator_name), at,
                                             fmt::format("{} at {}: dropped from the active list; its rows, history "
                                                         "and runs are kept",
                                                         name, row->path));
                         store::append_audit(d, id, "finish", std::nullopt, at, std::string(status));
                       });
  return r;
}

std::optional<std::string> path_disagreement(const store::VolumeRow& row, const std::filesystem::path& configured) {
  if (row.path == configured.string()) return std::nullopt;
  auto to = escape_for_display(configured.string());
  return fmt::format("volume \"{}\" is indexed at {} but the config says {} — every command refuses until you run "
                     "`squirrel volumes move {} {}` to move it deliberately, or fix the config",
                     row.name, escape_for_display(row.path), to, row.name, to);
}

}  // namespace sq::engine
