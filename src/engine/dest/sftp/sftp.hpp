#pragma once
// The SFTP transport (spec sync-offload-restore.md §6.3): a directory on an
// SSH server as a destination root, through libssh.
//
//  rule                         | what it means here
//  -----------------------------+--------------------------------------------
//  host key always verified     | against known_hosts_file (default
//                               | ~/.ssh/known_hosts); unknown or changed keys
//                               | are refused before any credential is sent
//  auth order                   | key_file, then password (also answering
//                               | keyboard-interactive), else ssh-agent
//  passphrase-protected key     | refused: "load it into ssh-agent"
//  connect + handshake + auth   | bounded by connect_timeout_ns (1 minute)
//  one SSH session per thread   | a pool of up to max_sessions connections
//  exclusive create, no-replace | checked with an lstat before put and rename
//  rename                       | (servers differ), failing EEXIST — except
//                               | for a name in a directory this transport
//                               | made itself and never created that name in:
//                               | it held nothing before, so the name is
//                               | absent without a round trip
//  symlinks                     | never followed: every parent is lstat'ed
//  durability                   | fsync@openssh.com after each put when the
//                               | server offers it, and flush() opens and
//                               | syncs every directory whose entries changed
//                               | (renames, mkdirs, removes); without it
//                               | flush() cannot make bytes durable and says
//                               | so (durability_gap())
//  server hash                  | md5sum/sha1sum/sha256sum/b3sum run by the
//                               | server over the stored bytes, probed once
//                               | per transport with a known input; names
//                               | reach it on stdin, never on a command line
//  mtime                        | SFTP v3 keeps whole seconds: put reports
//                               | the stored mtime
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/dest/transport.hpp"

namespace sq::dest {

struct SftpOptions {
  std::string host;
  int port = 22;
  std::string user;
  // The remote directory: absolute, or relative to the login directory.
  std::string root;
  std::optional<std::string> key_file, password, known_hosts_file;
  std::optional<std::string> host_key_algorithms;  // space-separated pin list
  // The server hash to use; empty: b3sum when it works, else sha256sum.
  std::optional<std::string> hash_algo;
  std::int64_t connect_timeout_ns = 60LL * 1000000000;
  int max_sessions = 8;
  // The label in messages, e.g. the destination's name.
  std::string label;
};

// What a connection learnt about the server (destination check).
struct SftpFacts {
  std::string endpoint;             // user@host:port
  std::string host_key_fingerprint; // SHA256:...
  std::string host_key_type;
  bool host_key_trusted = false;
  std::string host_key_problem;     // why it is not trusted, with the step to trust it
  std::string known_hosts_file;
  bool authenticated = false;
  std::string auth_problem;
  std::vector<std::string> extensions;  // names the server advertised
  std::string hash_algo;                // the working server hash, empty: none
  std::string hash_problem;
  std::optional<std::int64_t> free_bytes;  // statvfs@openssh.com
  bool root_exists = false;
};

// Opens the transport: connects, verifies the host key, authenticates,
// probes the server hash and checks that the root is a directory (it
// creates a missing root only with create_root). Throws TransportError
// with one line saying what went wrong and what to do.
std::unique_ptr<Transport> open_sftp_transport(const SftpOptions& o, bool create_root = false);

// Connects as far as it safely can and reports every fact; never throws
// for a refused key, a failed login or a missing hash command. Never sends
// a credential to a server whose host key is not trusted.
SftpFacts probe_sftp(const SftpOptions& o);

// The known_hosts file the options use (known_hosts_file or ~/.ssh/known_hosts).
std::string known_hosts_path(const SftpOptions& o);

}  // namespace sq::dest
