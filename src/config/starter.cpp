#include "config/starter.hpp"

#include <fmt/format.h>

namespace sq::config {

std::string starter_config() {
  return fmt::format(R"(# squirrel configuration, written by `squirrel init`.
# Edit the two paths marked below, then run `squirrel backup --init`.
# Every key: docs/configuration.md. Check this file: `squirrel config check`.

# The index database (where squirrel records every file and copy).
# db = "~/.squirrel/index.db"
# This machine's name, stamped on what it indexes (default: the hostname).
# node_name = "laptop"

# A volume: a folder tree squirrel indexes, copies and may free space in.
[volumes.{0}]
path = "{2}"  # <- edit: the folder to keep safe
sync_to = ["{1}"]
# Let `squirrel offload` delete local files once their copies are proven:
# offload_requires = ["{1}"]
# offload_max_evidence_age = "30d"

# A destination: a folder on another disk (USB disk, NAS mount). The copies
# of a volume go to <root>/<volume>/; the first `squirrel backup --init`
# creates them there, and only where the place is empty.
[destinations.{1}]
type = "local"
root = "{3}"  # <- edit: where the copies go (not inside the volume)

# A server over SSH (coming):
# [destinations.nas]
# type = "sftp"
# host = "nas.lan"
# user = "me"
# root = "/srv/squirrel"

# Snapshots of the index database (on by default):
# [backups]
# keep = 7
)",
                     kStarterVolume, kStarterDestination, kStarterVolumePath, kStarterDestinationRoot);
}

}  // namespace sq::config
