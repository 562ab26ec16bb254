#pragma once
// Strict loading of ~/.squirrel/config.toml. Every key of the documented
// schema is parsed and validated now, so configs written for the reference
// load here even where the feature comes later. Unknown keys, wrong types,
// missing required keys and unset secrets are load errors naming file:line.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace sq::config {

struct Hook {
  std::vector<std::string> command;
  std::int64_t timeout_ns = 3600LL * 1000000000LL;
  std::optional<std::int64_t> interval_ns;
};

struct Volume {
  std::string name;
  std::filesystem::path path;  // absolute, ~ expanded, lexically normal
  std::vector<std::string> sync_to;           // each target once
  std::vector<std::string> sync_to_repeated;  // names listed again, for `config check` to warn about
  std::optional<std::int64_t> sync_every_ns;
  std::optional<std::int64_t> index_every_ns;
  // May name a target declared nowhere here (see external_targets).
  std::vector<std::string> offload_requires;
  // 30 days unless configured; "off" gives nullopt (no staleness limit).
  std::optional<std::int64_t> offload_max_evidence_age_ns = 30LL * 86400LL * 1000000000LL;
  std::optional<Hook> hook;
  int line = 0;  // where the table was declared, for messages
};

struct Crypt {
  std::string password;
  std::optional<std::string> password2;
  bool obscured = false;
};

struct Destination {
  std::string name;
  std::string type;    // local | sftp | s3 | b2 | gcs | kopia | restic
  std::string root;    // for local/kopia/restic an absolute path, else a remote sub-path
  std::string layout;  // mirror | content-addressed | packed ("" for kopia/restic)
  std::optional<int> concurrency;
  std::optional<int> checkers;
  std::optional<std::int64_t> verify_every_ns;
  // packed knobs (defaults applied only for the packed layout)
  std::optional<std::int64_t> pack_threshold;
  std::optional<std::int64_t> pack_size;
  std::optional<int> zstd_level;
  // sftp
  std::string host, user;
  std::optional<int> port;
  std::optional<std::string> password;  // sftp password, kopia/restic password
  std::optional<std::string> key_file, known_hosts_file, host_key_algorithms, hash_algo;
  // s3 / b2 / gcs
  std::string provider, bucket;
  std::optional<std::string> region, endpoint, storage_class;
  std::optional<std::string> access_key_id, secret_access_key;
  std::optional<bool> force_path_style;
  std::optional<std::string> account_id, application_key;
  std::optional<std::string> service_account_file, service_account_credentials;
  // kopia
  std::optional<double> verify_files_percent;  // default 10 for kopia
  std::optional<Crypt> crypt;
  int line = 0;

  // False only for layouts that can structurally never produce
  // content-verified evidence (a mirror behind crypt).
  bool can_ever_gate_offload() const;
  // The root is a directory on this machine (local, kopia, a restic path).
  bool has_local_root() const;
  // A mirror squirrel writes itself: local, or sftp without crypt.
  bool native_mirror() const { return layout == "mirror" && !crypt && (type == "local" || type == "sftp"); }
  bool native_packed() const { return layout == "packed" && !crypt && (type == "local" || type == "sftp"); }
  // A content-addressed destination squirrel writes itself (local or sftp, no crypt).
  bool native_content() const {
    return layout == "content-addressed" && !crypt && (type == "local" || type == "sftp");
  }
};

struct Node {
  std::string name;
  std::string endpoint;
  std::string bearer;
  std::optional<std::string> cert_fingerprint;  // "sha256:<64 lowercase hex>"
  std::string dedup_strategy = "copy";
  std::optional<std::int64_t> pull_durability_every_ns;
  int line = 0;
};

struct Backups {
  bool enabled = true;
  std::optional<std::filesystem::path> dir;  // default <dir of db>/backups
  int keep = 7;
  bool cloud = true;
  int cloud_keep = 7;
};

struct Agent {
  std::optional<std::string> listen;
  std::optional<std::filesystem::path> db;
  std::optional<std::filesystem::path> tls_cert, tls_key;
  std::optional<std::string> auth_token;
  std::map<std::string, std::string> peer_bearers;
  std::optional<std::int64_t> scan_interval_ns;
  std::string scan_strategy = "shallow";
  std::optional<std::int64_t> verify_every_ns;
};

struct Config {
  std::filesystem::path file;  // the file this was loaded from (absolute)
  std::optional<std::filesystem::path> db;
  std::optional<std::string> node_name;
  std::map<std::string, Volume> volumes;
  std::map<std::string, Destination> destinations;
  std::map<std::string, Node> nodes;
  Backups backups;
  std::optional<Agent> agent;
  // Key paths of secrets written into the file itself rather than read with
  // { env = "VAR" }: such a file must not be readable by other accounts.
  std::vector<std::string> literal_secrets;

  // offload_requires names that are neither a destination nor a node here:
  // targets only a peer pushes to, which count only through the evidence
  // that peer relays.
  std::vector<std::string> external_targets(const Volume& v) const;

  const Volume* volume(const std::string& name) const;
  const Destination* destination(const std::string& name) const;
  const Node* node(const std::string& name) const;
};

// Throws sq::Error(ErrorKind::config) with a one-line message
// "<file>:<line>: <key path>: <problem> — <what to do>" on any problem.
// A missing file gives "no config at <path> — create one (see docs/configuration.md)".
Config load(const std::filesystem::path& file);
Config parse(const std::string& toml_text, const std::filesystem::path& file_for_messages);

// Default config path: $SQUIRREL_CONFIG, else ~/.squirrel/config.toml.
std::filesystem::path default_config_path();
// ~ expansion, then absolute against the working directory, lexically normal.
std::filesystem::path expand_path(const std::string& text);
// Rejects a DB path with NUL, surrounding whitespace, '?', '#', "://" or a "file:" prefix.
void validate_db_path(const std::string& path);

// Layouts that eat themselves: a local destination root inside a volume, a
// volume inside a local destination root, nested volumes, two volumes on
// one path. Loading refuses the first such pair it sees on the configured
// paths; commands that touch bytes ask again on real paths, since a symlink
// or a bind mount can hide the same relations from the config strings.
struct LayoutClash {
  std::string section, name, key;  // where the message points: "volumes", "inner", "path"
  int line = 0;
  std::string first, second;       // the two names involved (volumes and destinations share one namespace)
  std::string problem, todo;       // one line: "<problem> — <todo>"
};
// `inside(outer, inner)` is true when inner is outer or lies beneath it;
// `show` renders a path for a message (default: as configured).
using InsidePath = std::function<bool(const std::filesystem::path& outer, const std::filesystem::path& inner)>;
using ShowPath = std::function<std::string(const std::filesystem::path&)>;
std::vector<LayoutClash> layout_clashes(const Config& cfg, const InsidePath& inside, const ShowPath& show = {});
// The same relations on real paths (symlinks, bind mounts and second mounts
// resolved); a path that does not exist yet is judged where it would be
// created. Messages show "<configured> (really <real>)" where they differ
// and say "on disk (through a symlink or a mount)".
std::vector<LayoutClash> real_layout_clashes(const Config& cfg);

// One line of `config check`: level is "ok", "warn" or "FAIL".
struct CheckLine {
  std::string section;  // volumes | destinations | nodes | offload
  std::string name;
  std::string level;
  std::string detail;
};
// Read-only checks against the filesystem (volume paths exist and are
// directories, empty volume dir warns, local destination roots ...). The
// "layout" section adds real-path clashes (FAIL), local destinations on a
// volatile filesystem and destinations sharing a volume's disk (warn).
std::vector<CheckLine> check(const Config& cfg);

// The one wording of an unknown volume, whatever the command.
Error unknown_volume(const std::string& name, const std::filesystem::path& config_file);

}  // namespace sq::config
