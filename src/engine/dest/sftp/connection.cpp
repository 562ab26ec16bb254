// Connecting to an SSH server: TCP + handshake, host key check against
// known_hosts, login, then the SFTP subsystem. Every refusal is one line
// naming the endpoint and the next step.
#include "engine/dest/sftp/connection.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/text.hpp"

namespace sq::dest {

std::string known_hosts_path(const SftpOptions& o) {
  const char* home = std::getenv("HOME");
  return o.known_hosts_file.value_or(std::string(home && *home ? home : "") + "/.ssh/known_hosts");
}

}  // namespace sq::dest

namespace sq::dest::sftp {

namespace {

[[noreturn]] void refuse(int err, const std::string& message) { throw TransportError(err, message); }

void set_options(ssh_session s, const SftpOptions& o) {
  long timeout_s = std::max<long>(1, static_cast<long>((o.connect_timeout_ns + 999999999) / 1000000000));
  bool no = false;
  int verbosity = SSH_LOG_NOLOG;
  std::string known = known_hosts_path(o);
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);  // what the config says, not ~/.ssh/config
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(s, SSH_OPTIONS_HOST, o.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &o.port);
  ssh_options_set(s, SSH_OPTIONS_USER, o.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout_s);
  int nodelay = 1;  // a request waits for its reply: Nagle would hold back each one's last segment
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  if (o.host_key_algorithms) {
    std::string list = *o.host_key_algorithms;
    for (auto& c : list)
      if (c == ' ') c = ',';
    ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, list.c_str());
  }
}

struct KeyHolder {
  ssh_key key = nullptr;
  ~KeyHolder() { ssh_key_free(key); }
};

int passphrase_asked(const char*, char*, size_t, int, int, void* userdata) {
  *static_cast<bool*>(userdata) = true;
  return SSH_ERROR;  // no passphrase is ever typed in: keys with one go to ssh-agent
}

std::string fingerprint_of(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) return "(no fingerprint)";
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  std::string out = text ? text : "(no fingerprint)";
  ssh_string_free_char(text);
  ssh_clean_pubkey_hash(&hash);
  return out;
}

std::string known_hosts_line(ssh_session s) {
  char* entry = nullptr;
  if (ssh_session_export_known_hosts_entry(s, &entry) != SSH_OK || !entry) return "";
  std::string line = entry;
  ssh_string_free_char(entry);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

}  // namespace

std::string endpoint_of(const SftpOptions& o) { return fmt::format("{}@{}:{}", o.user, o.host, o.port); }

Connection::Connection(const SftpOptions& o, SftpFacts* facts) {
  ssh_ = ssh_new();
  if (!ssh_) refuse(ENOMEM, "cannot start an SSH session");
  try {
    connect(o, facts);
    if (!verify_host_key(o, facts)) return;
    if (!authenticate(o, facts)) return;
    open_sftp(o, facts);
  } catch (...) {
    close();
    throw;
  }
}

Connection::~Connection() { close(); }

void Connection::close() {
  // sftp_free() before the disconnect, which frees the channel it uses.
  if (sftp_) sftp_free(sftp_);
  sftp_ = nullptr;
  if (ssh_ && ssh_is_connected(ssh_)) ssh_disconnect(ssh_);
  if (ssh_) ssh_free(ssh_);
  ssh_ = nullptr;
}

bool Connection::alive() const { return ssh_ && ssh_is_connected(ssh_); }

void Connection::connect(const SftpOptions& o, SftpFacts* facts) {
  set_options(ssh_, o);
  if (facts) facts->endpoint = endpoint_of(o);
  if (ssh_connect(ssh_) != SSH_OK)
    refuse(ECONNREFUSED, fmt::format("cannot connect to {}: {} — check host and port, and that the SSH server is "
                                     "up and reachable",
                                     endpoint_of(o), ssh_get_error(ssh_)));
}

bool Connection::verify_host_key(const SftpOptions& o, SftpFacts* facts) {
  KeyHolder key;
  if (ssh_get_server_publickey(ssh_, &key.key) != SSH_OK)
    refuse(EPROTO, fmt::format("{} sent no host key: {}", endpoint_of(o), ssh_get_error(ssh_)));
  std::string fp = fingerprint_of(key.key);
  std::string known = known_hosts_path(o);
  if (facts) {
    facts->host_key_fingerprint = fp;
    facts->host_key_type = ssh_key_type_to_char(ssh_key_type(key.key));
    facts->known_hosts_file = known;
  }
  std::string problem;
  switch (ssh_session_is_known_server(ssh_)) {
    case SSH_KNOWN_HOSTS_OK:
      if (facts) facts->host_key_trusted = true;
      return true;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      problem = fmt::format("the host key of {} CHANGED: the server presented {}, {} holds another — someone may be "
                            "intercepting the connection; if the server was reinstalled, check the new key with its "
                            "owner, then replace its line in {} with: {}",
                            endpoint_of(o), fp, known, known, known_hosts_line(ssh_));
      break;
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      problem = fmt::format("the host key of {} is not trusted yet: the server presented {}, which {} does not hold "
                            "— if that is the server's key, add this line to {}: {}",
                            endpoint_of(o), fp, known, known, known_hosts_line(ssh_));
      break;
    default:
      problem = fmt::format("cannot check the host key of {} against {}: {} — fix or recreate that file",
                            endpoint_of(o), known, ssh_get_error(ssh_));
  }
  if (!facts) refuse(EACCES, problem);
  facts->host_key_problem = problem;
  return false;
}

namespace {

std::string key_file_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fmt::format("key_file {} cannot be read: {} — fix key_file", escape_for_display(path), std::strerror(errno));
  return "";
}

// Answers every keyboard-interactive prompt with the password, as a
// person typing it would; gives up after a few rounds.
int kbdint_with(ssh_session s, const std::string& password) {
  int rc = ssh_userauth_kbdint(s, nullptr, nullptr);
  for (int round = 0; rc == SSH_AUTH_INFO && round < 4; ++round) {
    int prompts = ssh_userauth_kbdint_getnprompts(s);
    for (int i = 0; i < prompts; ++i) ssh_userauth_kbdint_setanswer(s, static_cast<unsigned>(i), password.c_str());
    rc = ssh_userauth_kbdint(s, nullptr, nullptr);
  }
  return rc;
}

}  // namespace

bool Connection::authenticate(const SftpOptions& o, SftpFacts* facts) {
  std::string tried, problem;
  if (o.key_file) {
    tried = "key_file " + escape_for_display(*o.key_file);
    problem = key_file_problem(*o.key_file);
    KeyHolder key;
    bool asked = false;
    if (problem.empty() &&
        ssh_pki_import_privkey_file(o.key_file->c_str(), nullptr, passphrase_asked, &asked, &key.key) != SSH_OK)
      problem = asked ? fmt::format("key_file {} is protected by a passphrase — load it into ssh-agent (ssh-add {}) "
                                    "and remove key_file from the destination",
                                    escape_for_display(*o.key_file), escape_for_display(*o.key_file))
                      : fmt::format("key_file {} is not a private key libssh can read — point key_file at an "
                                    "OpenSSH private key",
                                    escape_for_display(*o.key_file));
    if (!problem.empty()) {
      if (!facts) refuse(EACCES, problem);
      facts->auth_problem = problem;
      return false;
    }
    if (ssh_userauth_publickey(ssh_, nullptr, key.key) == SSH_AUTH_SUCCESS) return facts ? (facts->authenticated = true) : true;
  }
  if (o.password) {
    tried += tried.empty() ? "the password" : " and the password";
    if (ssh_userauth_password(ssh_, nullptr, o.password->c_str()) == SSH_AUTH_SUCCESS ||
        kbdint_with(ssh_, *o.password) == SSH_AUTH_SUCCESS)
      return facts ? (facts->authenticated = true) : true;
  }
  if (!o.key_file && !o.password) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock)
      problem = fmt::format("no way to log in to {}: no key_file, no password, and no ssh-agent (SSH_AUTH_SOCK is "
                            "not set) — set key_file or password, or start ssh-agent and add a key",
                            endpoint_of(o));
    else if (ssh_userauth_agent(ssh_, nullptr) == SSH_AUTH_SUCCESS)
      return facts ? (facts->authenticated = true) : true;
    tried = "the keys in ssh-agent";
  }
  if (problem.empty())
    problem = fmt::format("{} refused the login with {}: {} — check user, and the key or password", endpoint_of(o),
                          tried, ssh_get_error(ssh_));
  if (!facts) refuse(EACCES, problem);
  facts->auth_problem = problem;
  return false;
}

void Connection::open_sftp(const SftpOptions& o, SftpFacts* facts) {
  sftp_ = sftp_new(ssh_);
  if (!sftp_ || sftp_init(sftp_) != SSH_OK) {
    std::string why = ssh_get_error(ssh_);
    if (sftp_) sftp_free(sftp_);
    sftp_ = nullptr;
    refuse(EPROTO, fmt::format("{} does not offer SFTP: {} — enable the sftp subsystem on the server", endpoint_of(o),
                               why));
  }
  fsync_ = sftp_extension_supported(sftp_, "fsync@openssh.com", "1") != 0;
  if (!facts) return;
  for (unsigned i = 0, n = sftp_extensions_get_count(sftp_); i < n; ++i)
    if (const char* name = sftp_extensions_get_name(sftp_, i)) facts->extensions.emplace_back(name);
}

namespace {

struct ChannelHolder {
  ssh_channel ch = nullptr;
  ~ChannelHolder() {
    if (!ch) return;
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
};

// Reads stdout until end of file; false when it exceeds cap or fails, or
// once the stall guard gave the call up (a silent command is waited for
// while the guard waits, and not a moment longer).
bool read_output(ssh_channel ch, std::size_t cap, std::string& out) {
  constexpr int kWaitMs = 2000;  // how soon a given-up call notices
  char buf[4096];
  while (!ssh_channel_is_eof(ch)) {
    int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, kWaitMs);
    if (n < 0) return false;
    if (n == 0 && !ssh_channel_is_open(ch)) break;
    if (n == 0 && call_given_up()) return false;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > cap) return false;
    if (n > 0) note_progress();
  }
  return true;
}

}  // namespace

std::optional<ExecResult> Connection::exec(const std::string& command, const std::string& input, std::size_t cap) {
  ChannelHolder h;
  h.ch = ssh_channel_new(ssh_);
  if (!h.ch || ssh_channel_open_session(h.ch) != SSH_OK || ssh_channel_request_exec(h.ch, command.c_str()) != SSH_OK)
    return std::nullopt;
  for (std::size_t off = 0; off < input.size();) {
    int n = ssh_channel_write(h.ch, input.data() + off, static_cast<std::uint32_t>(input.size() - off));
    if (n <= 0) return std::nullopt;
    off += static_cast<std::size_t>(n);
  }
  ssh_channel_send_eof(h.ch);
  ExecResult r;
  if (!read_output(h.ch, cap, r.out)) return std::nullopt;
  char sink[1024];
  while (ssh_channel_read_nonblocking(h.ch, sink, sizeof sink, 1) > 0) {
  }
  ssh_channel_close(h.ch);
  r.status = ssh_channel_get_exit_status(h.ch);
  return r;
}

int Connection::last_errno() const {
  if (!alive()) return EIO;
  switch (sftp_get_error(sftp_)) {
    case SSH_FX_NO_SUCH_FILE: return ENOENT;
    case SSH_FX_PERMISSION_DENIED: return EACCES;
    case SSH_FX_FILE_ALREADY_EXISTS: return EEXIST;
    case SSH_FX_OP_UNSUPPORTED: return ENOTSUP;
    default: return EIO;
  }
}

void Connection::fail(const char* what, const std::string& name) const {
  int err = last_errno();
  std::string why = alive() ? (err == EIO ? std::string("the server reported a failure") : std::strerror(err))
                            : fmt::format("the connection was lost ({})", ssh_get_error(ssh_));
  throw TransportError(err, fmt::format("{} {}: {}", what, escape_for_display(name), why));
}

}  // namespace sq::dest::sftp
