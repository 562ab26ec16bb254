#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace sq::store {

struct VolumeRow {
  std::int64_t id = 0;
  std::string name;
  std::string path;
  std::int64_t created_at_ns = 0;
  std::optional<std::int64_t> forgotten_run;  // the `volumes forget` run; empty while active
};

std::optional<VolumeRow> find_volume(Db& db, const std::string& name);
// Active volumes only, unless `with_forgotten`.
std::vector<VolumeRow> list_volumes(Db& db, bool with_forgotten = false);
// Marks the volume forgotten by `run_id`, or (nullopt) active again.
void set_forgotten(Db& db, std::int64_t volume_id, std::optional<std::int64_t> run_id);
// This database's random identity (32 hex digits), written into the markers
// of the volumes it owns.
std::string database_identity(Db& db);
// The name of this machine's own node row ("" before one exists), which
// markers record as the node that wrote them.
std::string self_node_name(Db& db);
// Inserts the volume; fails when the name exists.
VolumeRow create_volume(Db& db, const std::string& name, const std::string& path);

}  // namespace sq::store
