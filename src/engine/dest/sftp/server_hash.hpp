#pragma once
// The server's own hash command over stored bytes. File names reach it on
// stdin, NUL-terminated, through a fixed command line; no byte of a user's
// file name is ever part of a command the server's shell parses.
#include <optional>
#include <string>
#include <vector>

#include "engine/dest/sftp/connection.hpp"

namespace sq::dest::sftp {

// The first working algorithm of `pinned` (or of b3sum, then sha256sum),
// checked by hashing a known input and an empty file; "" when the server
// runs none of them, with the reason in *problem.
std::string probe_server_hash(Connection& c, const std::optional<std::string>& pinned, std::string* problem);

// Lowercase hex digests of the files at `paths` (remote paths), in order.
// Throws TransportError when the server cannot hash one of them.
std::vector<std::string> server_hashes(Connection& c, const std::string& algo, const std::vector<std::string>& paths);

}  // namespace sq::dest::sftp
