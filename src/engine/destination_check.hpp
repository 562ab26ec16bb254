#pragma once
// `squirrel destination check`: is this destination a place copies can
// safely live? Reachability, the filesystem (a memory filesystem loses
// everything at an unmount), layout clashes on real paths, a shared disk
// with a volume, free space against what the next sync writes, and each
// volume's marker. Read-only: nothing is created, written or recorded.
// Only local roots are examined so far; later transports extend this.
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/db.hpp"

namespace sq::engine {

struct DestinationFinding {
  std::string check;   // transport | reachable | filesystem | layout | same-disk | free-space | marker
  std::string level;   // ok | warn | FAIL
  std::string detail;  // one line
};

struct DestinationCheck {
  std::string destination;
  std::vector<DestinationFinding> findings;
  bool ok() const;  // no FAIL
};

// `db` may be null when no index exists yet. An undeclared destination
// throws Error(not_found).
DestinationCheck check_destination(const config::Config& cfg, store::Db* db, const std::string& destination);

}  // namespace sq::engine
