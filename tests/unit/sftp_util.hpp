#pragma once
// SFTP transport options for a test server: its port, its user, its client
// key and known_hosts, and the given root.
#include <string>

#include "engine/dest/sftp/sftp.hpp"
#include "sshd_util.hpp"

namespace sq::test {

inline dest::SftpOptions sftp_options_for(const SshServer& server, const std::string& root) {
  dest::SftpOptions o;
  o.host = "127.0.0.1";
  o.port = server.port();
  o.user = server.user();
  o.root = root;
  o.key_file = server.client_key().string();
  o.known_hosts_file = server.known_hosts().string();
  return o;
}

}  // namespace sq::test
