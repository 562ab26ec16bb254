#pragma once
// `squirrel destination check`: is this destination a place copies can
// safely live? Reachability, the filesystem (a memory filesystem loses
// everything at an unmount), layout clashes on real paths, a shared disk
// with a volume, free space against what the next sync writes, and each
// volume's marker. An sftp mirror is examined on its server: the
// connection, the host key, the login, the SFTP extensions, the server's
// hash command, free space, the root and the markers. Read-only: nothing is
// created, written or recorded. Other remote destinations get a
// "transport" warning that nothing was examined.
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/db.hpp"

namespace sq::engine {

struct DestinationFinding {
  // transport | reachable | filesystem | layout | same-disk | free-space | marker,
  // and for sftp: host-key | login | extensions | server-hash | root
  std::string check;
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
