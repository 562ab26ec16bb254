#pragma once
// The one volume-resolution function (seed property 4): the configured
// path, the path recorded in the index and the `.squirrel-volume` marker in
// the tree must agree, or nothing happens.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/fs.hpp"
#include "store/db.hpp"
#include "store/volumes.hpp"

namespace sq::engine {

inline constexpr const char* kMarkerName = ".squirrel-volume";

// The reference's fields first (volume, node, version, created_at), in its
// order and escaping, then ours, which the reference ignores.
struct Marker {
  Marker() = default;
  Marker(std::string v, std::int64_t created, std::optional<std::string> db = std::nullopt, std::string n = "")
      : volume(std::move(v)), created_at_ns(created), index_db(std::move(db)), node(std::move(n)) {}
  std::string volume;
  // Written as created_at (RFC 3339, as the reference reads it) and as
  // created_at_ns (exact); a reference marker carries only the former.
  std::int64_t created_at_ns = 0;
  // The identity of the index database that owns the volume; absent in
  // markers written before it existed (or by the reference), which any
  // database accepts.
  std::optional<std::string> index_db;
  std::string node;  // the node that wrote it
};
std::string render_marker(const Marker& m);
std::optional<Marker> parse_marker(const std::string& text);

enum class ResolveMode {
  existing,     // the volume must already be indexed (sync, offload, restore, verify, audit)
  first_index,  // index: an unindexed volume is accepted and may be created
};

struct ResolvedVolume {
  std::string name;
  std::filesystem::path path;          // configured == recorded
  std::optional<store::VolumeRow> row; // empty only for a first index
  bool marker_present = false;
  Fd root;                             // the open volume root
};

// Throws Error(refused) naming the disagreement and the deliberate remedy;
// Error(not_found) for an undeclared volume; Error(io) when the root cannot
// be opened. Never writes anything.
ResolvedVolume resolve_volume(const config::Config& cfg, store::Db& db, const std::string& name, ResolveMode mode);

// Seed property 4's one message: what is wrong and what to do when the
// config names another path than the index recorded; nullopt when they agree.
std::optional<std::string> path_disagreement(const store::VolumeRow& row, const std::filesystem::path& configured);

// Selectors of files or folders inside a volume (offload, restore): each a
// clean relative path ("a/b", trailing slashes dropped) or "." for all of
// it. Throws Error(usage) naming the first that is not.
std::vector<std::string> clean_selectors(const std::vector<std::string>& raw);

// `volumes adopt`: makes this database the owner of a volume whose marker
// names another database (a deliberate move between databases). The
// marker must name the volume; it is replaced atomically with one naming
// this database. Recorded as an audit run with a `volume-adopt` audit row.
struct AdoptResult {
  std::string previous_owner;  // "" when the marker named none
  std::int64_t run_id = 0;
};
AdoptResult adopt_into_this_database(const config::Config& cfg, store::Db& db, const std::string& name,
                                     const std::string& operator_name);

// `volumes forget`: drops a volume that left the config from the active
// list; its rows, history and runs stay. Gated like an audit run of the
// volume and recorded with a `volume-forget` audit row naming the operator.
// Refused while the config still declares it.
struct ForgetResult {
  std::int64_t run_id = 0;           // the forgetting run (the earlier one when already forgotten)
  bool already_forgotten = false;
};
ForgetResult forget_volume(const config::Config& cfg, store::Db& db, const std::string& name,
                           const std::string& operator_name);

// For a first index: records the volume row and writes the marker
// (exclusive create; an existing marker is never rewritten).
void adopt_volume(store::Db& db, ResolvedVolume& v);

}  // namespace sq::engine

namespace sq::engine {

struct MoveResult {
  std::string from, to;
  std::int64_t run_id = 0;
};
// `volumes move`: the deliberate way to re-point a volume. The new path must
// hold a marker naming the volume; the old path is never touched. Recorded
// as an audit run (gated like one) with a `volume-move` audit row.
MoveResult move_volume(store::Db& db, const std::string& name, const std::filesystem::path& new_path,
                       const std::string& operator_name);

}  // namespace sq::engine
