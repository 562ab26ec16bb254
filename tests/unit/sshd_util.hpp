#pragma once
// Test infrastructure for the SFTP transport: a real OpenSSH server on
// loopback (SshServer), started as our child with its own keys, config and
// known_hosts files, and a TCP proxy that injects faults between a client and
// it (FaultProxy). Both are RAII: the destructor stops everything they
// started, promptly, and leaves no process, thread or descriptor behind.
//
// Written for OpenSSH 9.2 (Debian 12). OpenSSH 9.8 and later penalise
// sources whose connections fail (PerSourcePenalties), which fault tests do
// on purpose; such a server would need `PerSourcePenalties no`, an option
// 9.2 rejects.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sq::test {

// What a finished client process left: its exit status (128+N if signal N
// ended it, -1 if it outlived its time limit and was killed), stdout, stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// One process as /proc showed it; the start time tells a process from a
// later one that reuses its pid.
struct ProcessRecord {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  unsigned long long start = 0;
};

// Helpers of this header only; their own namespace keeps them clear of the
// same-named helpers in other test headers (one definition rule).
namespace sshd_detail {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void write_all(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) throw std::runtime_error("cannot write " + p.string());
}

inline std::atomic<std::uint64_t> scratch_counter{0};

// Starts argv (argv[0] looked up in PATH) with stdin, stdout and stderr
// redirected to files. Signal dispositions and the mask are reset, so the
// child does not inherit, say, a test runner's ignored SIGPIPE. posix_spawn
// rather than fork: the test process has threads (FaultProxy).
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& in, const std::string& out,
                   const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc) +
                             " (run `bash scripts/install-deps.sh`)");
  return pid;
}

// Reaps `pid` if it ends within `limit`; returns its wait status, or nothing
// while it still runs.
inline std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child (any more): nothing left to wait for
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

inline int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline std::string current_user() {
  const passwd* pw = getpwuid(geteuid());
  if (!pw) throw std::runtime_error("getpwuid: no name for the current user");
  return pw->pw_name;
}

}  // namespace sshd_detail

// Runs argv (argv[0] looked up in PATH) to completion with `input` as its
// stdin, using files in `scratch` (an existing directory) for the streams.
// A child still running after `limit` is killed (exit_code -1), so a test
// that goes wrong fails instead of hanging.
inline CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& scratch,
                                 const std::string& input = "",
                                 std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  namespace d = sshd_detail;
  auto base = scratch / ("cmd-" + std::to_string(d::scratch_counter.fetch_add(1)));
  auto in = base.string() + ".in", out = base.string() + ".out", err = base.string() + ".err";
  d::write_all(in, input);
  pid_t pid = d::spawn(argv, in, out, err);
  CommandResult r;
  if (auto status = d::wait_for(pid, limit)) {
    r.exit_code = d::exit_code_of(*status);
  } else {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  r.out = d::read_all(out);
  r.err = d::read_all(err);
  std::error_code ec;
  for (const auto& f : {in, out, err}) std::filesystem::remove(f, ec);
  return r;
}

// The process `pid` as /proc shows it now, if it exists.
inline std::optional<ProcessRecord> process_record(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  auto close = line.rfind(')');  // the command name may itself hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  ProcessRecord p;
  p.pid = pid;
  rest >> p.state >> p.ppid;  // fields 3 and 4
  std::string skip;
  for (int field = 5; field < 22; ++field) rest >> skip;
  rest >> p.start;  // field 22: start time in clock ticks after boot
  if (!rest) return std::nullopt;
  return p;
}

// Every process below `root` (children, their children, ...) in one /proc
// snapshot. sshd's per-connection processes call setsid(), so a process
// group would not reach them; parenthood does.
inline std::vector<ProcessRecord> process_tree(pid_t root) {
  std::vector<ProcessRecord> all, tree;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    auto name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    if (auto p = process_record(std::stoi(name))) all.push_back(*p);
  }
  std::vector<pid_t> parents{root};
  for (std::size_t i = 0; i < parents.size(); ++i)
    for (const auto& p : all)
      if (p.ppid == parents[i]) {
        tree.push_back(p);
        parents.push_back(p.pid);
      }
  return tree;
}

// True while the recorded process runs: not gone, not a zombie, not another
// process that got its pid.
inline bool still_running(const ProcessRecord& p) {
  auto now = process_record(p.pid);
  return now && now->start == p.start && now->state != 'Z';
}

// A TCP connection to 127.0.0.1:port (blocking, close-on-exec), or -1.
inline int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace sshd_detail {

// A socket bound to 127.0.0.1:port (0: the kernel picks a free one);
// listening if backlog > 0. Non-blocking, so accept() after poll() cannot
// hang on a connection that was reset in between.
inline int bind_loopback(int port, int backlog) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (backlog > 0 && listen(fd, backlog) != 0)) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("bind/listen on 127.0.0.1: ") + std::strerror(e));
  }
  return fd;
}

inline int local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  return ntohs(a.sin_port);
}

// A loopback port that was free a moment ago. Another process may take it
// before sshd binds it; the caller retries then.
inline int free_loopback_port() {
  int fd = bind_loopback(0, 0);
  int port = local_port(fd);
  close(fd);
  return port;
}

// True if something listens on `port` and greets with an SSH-2.0 banner
// within two seconds.
inline bool has_ssh_banner(int port) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  std::string got;
  pollfd p{fd, POLLIN, 0};
  char buf[256];
  while (got.find('\n') == std::string::npos && got.size() < 255 && poll(&p, 1, 2000) == 1) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return got.rfind("SSH-2.0-", 0) == 0;
}

}  // namespace sshd_detail

struct SshServerOptions {
  bool sftp_only = false;  // `ForceCommand internal-sftp`: no exec, no shell, only the SFTP subsystem
};

// How a system ssh/sftp client call differs from the default: the server's
// own port, known_hosts() and client_key().
struct ClientOptions {
  // Initialised members, so a designated initializer naming only some of
  // them draws no -Wmissing-field-initializers from g++.
  int port = 0;                         // connect here (a FaultProxy); the host key is still checked as the server's
  std::filesystem::path known_hosts{};  // default: known_hosts()
  std::filesystem::path identity{};     // default: client_key()
  std::string input{};                  // ssh's stdin (sftp's stdin is its batch)
};

// A real OpenSSH server on 127.0.0.1:port(), run as our child with `-D` so
// the destructor can stop and reap it. Everything lives in `dir` (a fresh
// private temp dir): config, host key, client keys, authorized_keys,
// known_hosts files, sshd.log and root(). Logs in as the current user with
// key authentication; passwords cannot be tested (no account is touched).
class SshServer {
 public:
  static constexpr const char* kSshd = "/usr/sbin/sshd";  // absolute: sshd refuses to re-exec itself otherwise

  explicit SshServer(const std::filesystem::path& dir, SshServerOptions o = {})
      : dir_(std::filesystem::absolute(dir)), opts_(o), user_(sshd_detail::current_user()) {
    if (access(kSshd, X_OK) != 0)
      throw std::runtime_error(std::string(kSshd) + " is missing: run `bash scripts/install-deps.sh` (openssh-server)");
    check_config_safe(dir_);
    std::filesystem::create_directories(root());  // and dir itself, if it is missing
    make_keys();
    if (geteuid() == 0) ensure_privsep_dir();
    start();
    try {
      write_known_hosts();
      fingerprint_ = fingerprint_of(file("host_key.pub"));
    } catch (...) {
      stop();
      throw;
    }
  }
  ~SshServer() { stop(); }
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // the listening sshd; -1 once stopped
  std::string user() const { return user_; }
  std::filesystem::path client_key() const { return file("client_key"); }  // ed25519, no passphrase, authorized
  std::filesystem::path passphrase_key() const { return file("passphrase_key"); }  // passphrase "sesame", authorized
  // "[127.0.0.1]:<port> ssh-ed25519 <base64>": exactly this server's host key.
  std::filesystem::path known_hosts() const { return file("known_hosts"); }
  // Same host and port, a different key: the "host key changed" case.
  std::filesystem::path wrong_known_hosts() const { return file("wrong_known_hosts"); }
  // Exists and is empty: the "unknown host" case.
  std::filesystem::path empty_known_hosts() const { return file("empty_known_hosts"); }
  // An absolute, existing directory, empty at first: the tests' destination root.
  std::filesystem::path root() const { return file("root"); }
  // "SHA256:<base64>", as `ssh-keygen -lf` prints it for the host key.
  std::string host_key_fingerprint() const { return fingerprint_; }
  std::filesystem::path log() const { return file("sshd.log"); }
  std::filesystem::path dir() const { return dir_; }

  // Runs `command` on the server through the system ssh client (BatchMode,
  // strict host key checking against known_hosts(), client_key()); for test
  // assertions and as a baseline, never for the code under test.
  CommandResult ssh(const std::string& command, const ClientOptions& o = {}) const {
    auto argv = client_argv("ssh", o);
    argv.push_back(command);
    return run_command(argv, dir_, o.input);
  }
  // Runs `sftp -b -` with `batch` (commands, one a line) on its stdin; sftp
  // stops at the first failing command and exits non-zero.
  CommandResult sftp(const std::string& batch, const ClientOptions& o = {}) const {
    auto argv = client_argv("sftp", o);
    argv.insert(argv.end() - 1, {"-b", "-"});  // options before the host
    return run_command(argv, dir_, batch);
  }

 private:
  std::filesystem::path file(const std::string& name) const { return dir_ / name; }

  // sshd_config takes paths unquoted and expands '%' in some of them.
  static void check_config_safe(const std::filesystem::path& p) {
    auto s = p.string();
    if (s.find_first_of(" \t\n\"'%\\#") != std::string::npos)
      throw std::runtime_error("SshServer: directory unusable in sshd_config: " + s);
  }

  void keygen(const std::string& name, const std::string& passphrase) const {
    auto r = run_command(
        {"ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "squirrel-test", "-f", file(name).string()},
        dir_);
    if (r.exit_code != 0) throw std::runtime_error("ssh-keygen failed: " + r.err);
  }

  void make_keys() const {
    keygen("host_key", "");
    keygen("other_host_key", "");  // never served: only for wrong_known_hosts
    keygen("client_key", "");
    keygen("passphrase_key", "sesame");
    sshd_detail::write_all(file("authorized_keys"), sshd_detail::read_all(file("client_key.pub")) +
                                                        sshd_detail::read_all(file("passphrase_key.pub")));
    sshd_detail::write_all(empty_known_hosts(), "");
  }

  // sshd run as root insists on its privilege separation directory, which
  // only exists once the system sshd has run.
  static void ensure_privsep_dir() {
    if (mkdir("/run/sshd", 0755) == 0) {
      chmod("/run/sshd", 0755);  // mkdir's mode is filtered by the umask
    } else if (errno != EEXIST) {
      throw std::runtime_error(std::string("cannot create /run/sshd: ") + std::strerror(errno));
    }
  }

  std::string config() const {
    std::ostringstream c;
    c << "ListenAddress 127.0.0.1\nPort " << port_ << "\n"
      << "HostKey " << file("host_key").string() << "\n"
      << "AuthorizedKeysFile " << file("authorized_keys").string() << "\n"
      << "PidFile " << file("sshd.pid").string() << "\n"
      << "StrictModes no\n"  // temp dirs and keys are not laid out like a home directory
      << "PermitRootLogin yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication yes\n"
      << "UsePAM no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
      << "MaxStartups 100\nMaxSessions 100\n"  // tests open connections in bursts
      // bash sources ~/.bashrc for a command run by sshd unless SHLVL says it
      // is nested: an account's .bashrc (root's here, running pyenv) cost
      // 0.5 s per command, and could print into the output tests compare.
      << "SetEnv SHLVL=1\n";
    if (opts_.sftp_only) c << "ForceCommand internal-sftp\n";
    return c.str();
  }

  // Picks a port, starts sshd on it and waits until it answers. Another
  // process can take the port between our probe and sshd's bind; sshd then
  // exits, and we try another port.
  void start() {
    for (int attempt = 1;; ++attempt) {
      port_ = sshd_detail::free_loopback_port();
      sshd_detail::write_all(file("sshd_config"), config());
      std::error_code ec;
      std::filesystem::remove(file("sshd.pid"), ec);
      pid_ = sshd_detail::spawn({kSshd, "-D", "-f", file("sshd_config").string(), "-E", log().string()},
                                "/dev/null", "/dev/null", log().string());
      if (await_ready()) return;
      if (attempt == 5)
        throw std::runtime_error("sshd exited at start, 5 times; sshd.log:\n" + sshd_detail::read_all(log()));
    }
  }

  // True once sshd has bound the port (it writes its pid file only after
  // that, so a banner from some other server on the port cannot fool us) and
  // greets with "SSH-2.0"; false if it exited. Throws after 20 s.
  bool await_ready() {
    using namespace std::chrono_literals;
    auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      if (sshd_detail::wait_for(pid_, 0ms)) {
        pid_ = -1;
        return false;
      }
      if (sshd_detail::read_all(file("sshd.pid")) == std::to_string(pid_) + "\n" &&
          sshd_detail::has_ssh_banner(port_))
        return true;
      std::this_thread::sleep_for(20ms);
    }
    stop();
    throw std::runtime_error("sshd did not answer with an SSH-2.0 banner within 20 s; sshd.log:\n" +
                             sshd_detail::read_all(log()));
  }

  void write_known_hosts() const {
    auto host = "[127.0.0.1]:" + std::to_string(port_) + " ";
    auto key_of = [&](const std::string& pub) {  // "<type> <base64>", without the comment
      std::istringstream s(sshd_detail::read_all(file(pub)));
      std::string type, blob;
      s >> type >> blob;
      return type + " " + blob;
    };
    sshd_detail::write_all(known_hosts(), host + key_of("host_key.pub") + "\n");
    sshd_detail::write_all(wrong_known_hosts(), host + key_of("other_host_key.pub") + "\n");
  }

  std::string fingerprint_of(const std::filesystem::path& pub) const {
    auto r = run_command({"ssh-keygen", "-l", "-E", "sha256", "-f", pub.string()}, dir_);
    std::istringstream s(r.out);  // "256 SHA256:... comment (ED25519)"
    std::string bits, fp;
    s >> bits >> fp;
    if (r.exit_code != 0 || fp.rfind("SHA256:", 0) != 0)
      throw std::runtime_error("ssh-keygen -lf failed: " + r.out + r.err);
    return fp;
  }

  // -F /dev/null: neither ~/.ssh/config nor /etc/ssh/ssh_config applies;
  // no agent and only the given key, so nothing but the fixture decides.
  // HostKeyAlias keeps the known_hosts name when connecting via a proxy.
  // curve25519: what libssh 0.10 negotiates too (it has no sntrup761);
  // sntrup761 cost 0.2 s more per connection on a busy 2-core VM.
  std::vector<std::string> client_argv(const std::string& program, const ClientOptions& o) const {
    auto kh = o.known_hosts.empty() ? known_hosts() : o.known_hosts;
    auto id = o.identity.empty() ? client_key() : o.identity;
    return {program, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=" + kh.string(), "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "HostKeyAlias=[127.0.0.1]:" + std::to_string(port_), "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-i", id.string(), "-o", "User=" + user_,
            "-o", "Port=" + std::to_string(o.port ? o.port : port_), "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "KexAlgorithms=curve25519-sha256", "127.0.0.1"};
  }

  // SIGTERM to sshd and to every process below it (the listener leaves its
  // connections running when it exits), SIGKILL to whatever outlives a
  // grace period. Reaps the listener; init reaps the rest.
  void stop() noexcept {
    using namespace std::chrono_literals;
    if (pid_ <= 0) return;
    auto tree = process_tree(pid_);
    kill(pid_, SIGTERM);
    for (const auto& p : tree)
      if (still_running(p)) kill(p.pid, SIGTERM);
    if (!sshd_detail::wait_for(pid_, 5s)) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    auto await_gone = [&] {
      auto until = std::chrono::steady_clock::now() + 2s;
      for (const auto& p : tree)
        while (still_running(p) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    };
    await_gone();
    for (const auto& p : tree)
      if (still_running(p)) kill(p.pid, SIGKILL);
    await_gone();
  }

  std::filesystem::path dir_;
  SshServerOptions opts_;
  std::string user_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string fingerprint_;
};

// A TCP proxy on 127.0.0.1:port() that forwards every accepted connection
// to 127.0.0.1:target_port, with a fault. Each connection keeps the mode it
// was accepted under; one thread per connection copies both ways.
class FaultProxy {
 public:
  enum class Mode {
    pass,             // forward everything
    drop_after,       // close both sides once after_bytes (both directions together) have passed
    stall_after,      // after after_bytes, forward nothing more but keep both sockets open until release()
    trickle,          // forward at most ~1 KiB per 10 ms
    close_at_accept,  // accept and close at once, before a byte: a server that hangs up during the handshake
  };

  explicit FaultProxy(int target_port, Mode m = Mode::pass, std::int64_t after_bytes = 0)
      : target_(target_port), mode_(m), after_(after_bytes) {
    listen_fd_ = sshd_detail::bind_loopback(0, 128);
    port_ = sshd_detail::local_port(listen_fd_);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {  // close-on-exec, or a spawned child would keep the write end open
      close(listen_fd_);
      throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    stop_rd_ = p[0];
    stop_wr_ = p[1];
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  // Closing the pipe's write end wakes every poll(); stalled connections
  // wait on the condition variable instead.
  ~FaultProxy() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    close(stop_wr_);
    acceptor_.join();
    for (auto& t : workers_) t.join();  // the acceptor has ended, so workers_ no longer grows
    close(listen_fd_);
    close(stop_rd_);
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::int64_t connections() const { return connections_.load(); }  // accepted so far

  // Applies to connections accepted from now on.
  void set_mode(Mode m, std::int64_t after_bytes = 0) {
    std::lock_guard lock(mu_);
    mode_ = m;
    after_ = after_bytes;
  }

  // Ends the stall of every connection accepted before this call (once it
  // stalls, if it has not yet); they are then closed. Tying it to accept time
  // means a release cannot slip in before the stall it was meant to end.
  void release() {
    {
      std::lock_guard lock(mu_);
      ++release_gen_;
    }
    cv_.notify_all();
  }

 private:
  struct Settings {
    Mode mode;
    std::int64_t after;
    std::uint64_t gen;  // release_gen_ at accept
  };
  // One direction of a connection: bytes read from `from`, not yet written to `to`.
  struct Leg {
    int from;
    int to;
    std::string buf;
    bool eof = false;
    bool shut = false;  // the EOF was passed on
  };

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_rd_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents) return;
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      connections_.fetch_add(1);
      std::lock_guard lock(mu_);
      if (stopping_ || mode_ == Mode::close_at_accept) {
        close(c);
        if (stopping_) return;
        continue;
      }
      Settings s{mode_, after_, release_gen_};
      workers_.emplace_back([this, c, s] { serve(c, s); });
    }
  }

  void serve(int client, Settings s) {
    int server = connect_loopback(target_);
    if (server >= 0) {
      fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
      fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK);
      if (forward(client, server, s)) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || release_gen_ != s.gen; });
      }
      close(server);
    }
    close(client);
  }

  // Copies both ways until both sides ended, an error, the proxy stops or the
  // byte limit is reached; true if the connection is to stall now.
  bool forward(int a, int b, const Settings& s) {
    Leg legs[2] = {Leg{a, b, {}, false, false}, Leg{b, a, {}, false, false}};
    bool limited = s.mode == Mode::drop_after || s.mode == Mode::stall_after;
    std::int64_t passed = 0;  // read from either side
    auto next_read = std::chrono::steady_clock::now();
    int first = 0;  // the leg read first
    for (;;) {
      bool at_limit = limited && passed >= s.after;
      if (at_limit && legs[0].buf.empty() && legs[1].buf.empty()) return s.mode == Mode::stall_after;
      if (legs[0].shut && legs[1].shut) return false;
      auto now = std::chrono::steady_clock::now();
      pollfd p[3] = {{stop_rd_, POLLIN, 0}, {a, 0, 0}, {b, 0, 0}};
      for (int i = 0; i < 2; ++i) {
        if (!at_limit && now >= next_read && !legs[i].eof && legs[i].buf.empty()) p[1 + i].events |= POLLIN;
        if (!legs[i].buf.empty()) p[2 - i].events |= POLLOUT;  // leg 0 writes to b, leg 1 to a
      }
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_read - now).count();
      if (poll(p, 3, now < next_read ? static_cast<int>(wait) : -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (p[0].revents || ((p[1].revents | p[2].revents) & POLLERR)) return false;  // stopping, or a reset
      for (int k = 0; k < 2; ++k) {
        int i = (k + first) % 2;
        if (!(p[1 + i].events & POLLIN) || !p[1 + i].revents) continue;
        std::int64_t cap = s.mode == Mode::trickle ? 1024 : 65536;
        auto n = read_some(legs[i], static_cast<std::size_t>(limited ? std::min(cap, s.after - passed) : cap));
        if (n < 0) return false;
        passed += n;
        if (s.mode == Mode::trickle && n > 0) {  // one read per pause; the other direction goes first next time
          next_read = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
          first = 1 - i;
          break;
        }
      }
      for (auto& leg : legs)
        if (!write_some(leg)) return false;
    }
  }

  // Bytes read (0 at EOF or when nothing was ready), or -1 on an error.
  static std::int64_t read_some(Leg& leg, std::size_t cap) {
    char buf[65536];
    ssize_t n = recv(leg.from, buf, std::min(cap, sizeof buf), 0);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n == 0) leg.eof = true;
    leg.buf.append(buf, static_cast<std::size_t>(n));
    return n;
  }

  // Writes what the socket takes now; passes an EOF on once all is written.
  static bool write_some(Leg& leg) {
    if (!leg.buf.empty()) {
      ssize_t n = send(leg.to, leg.buf.data(), leg.buf.size(), MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      leg.buf.erase(0, static_cast<std::size_t>(n));
    }
    if (leg.eof && leg.buf.empty() && !leg.shut) {
      shutdown(leg.to, SHUT_WR);
      leg.shut = true;
    }
    return true;
  }

  int target_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_rd_ = -1;  // self-pipe: never written; closing stop_wr_ makes it readable (POLLHUP) for everyone
  int stop_wr_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;  // wakes stalled connections on release() or stop
  Mode mode_;
  std::int64_t after_;
  std::uint64_t release_gen_ = 0;
  bool stopping_ = false;
  std::atomic<std::int64_t> connections_{0};
  std::vector<std::thread> workers_;  // guarded by mu_ while the acceptor runs
  std::thread acceptor_;
};

}  // namespace sq::test
