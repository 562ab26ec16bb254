#pragma once
// One SSH connection with its SFTP channel, used by one thread at a time.
// Opening it verifies the host key before any credential is sent.
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <optional>
#include <string>

#include "engine/dest/sftp/sftp.hpp"

namespace sq::dest::sftp {

std::string endpoint_of(const SftpOptions& o);

struct ExecResult {
  std::string out;
  int status = -1;  // the command's exit status; -1 when the server sent none
};

class Connection {
 public:
  // Connects, verifies the host key and logs in; each step that fails
  // throws TransportError with one line. With `facts`, every step records
  // what it saw there, and a refused step stops without throwing.
  explicit Connection(const SftpOptions& o, SftpFacts* facts = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ready() const { return sftp_ != nullptr; }
  sftp_session sftp() const { return sftp_; }
  bool alive() const;
  bool has_fsync() const { return fsync_; }
  // Runs `command` with `input` on stdin, reading at most `cap` bytes of
  // output; nullopt when the server refuses to run commands or the output
  // is longer than cap.
  std::optional<ExecResult> exec(const std::string& command, const std::string& input, std::size_t cap);
  // Throws TransportError for the last SFTP error of this connection.
  [[noreturn]] void fail(const char* what, const std::string& name) const;
  int last_errno() const;

 private:
  void close();
  void connect(const SftpOptions& o, SftpFacts* facts);
  bool verify_host_key(const SftpOptions& o, SftpFacts* facts);
  bool authenticate(const SftpOptions& o, SftpFacts* facts);
  void open_sftp(const SftpOptions& o, SftpFacts* facts);
  ssh_session ssh_ = nullptr;
  sftp_session sftp_ = nullptr;
  bool fsync_ = false;
};

}  // namespace sq::dest::sftp
