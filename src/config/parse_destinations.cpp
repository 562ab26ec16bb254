// [destinations.<name>]: the common keys, the per-type keys, the layout
// knobs and [destinations.<name>.crypt]. A key that belongs to another type
// is an unknown key here, so a copy-pasted block cannot silently do nothing.
#include <fmt/format.h>

#include <algorithm>
#include <climits>

#include "config/loader.hpp"

namespace sq::config::detail {

namespace {

using Keys = std::vector<std::string_view>;

const Keys kTypes = {"local", "sftp", "s3", "b2", "gcs", "kopia", "restic"};
const Keys kLayouts = {"mirror", "content-addressed", "packed"};
const Keys kHashAlgos = {"md5", "sha1", "sha256", "crc32", "blake3", "xxh3", "xxh128"};

// The keys each type adds to the common ones, for the unknown-key hint.
const std::vector<std::pair<std::string_view, Keys>>& type_keys() {
  static const std::vector<std::pair<std::string_view, Keys>> table = {
      {"sftp",
       {"host", "user", "port", "key_file", "known_hosts_file", "host_key_algorithms", "hash_algo", "password"}},
      {"s3",
       {"provider", "bucket", "region", "endpoint", "storage_class", "force_path_style", "access_key_id",
        "secret_access_key"}},
      {"b2", {"bucket", "account_id", "application_key"}},
      {"gcs", {"bucket", "service_account_file", "service_account_credentials"}},
      {"kopia", {"password", "verify_files_percent"}},
      {"restic", {"password"}},
  };
  return table;
}

std::optional<Problem> other_type_hint(const std::string& type, std::string_view key) {
  std::vector<std::string_view> owners;
  for (const auto& [owner, keys] : type_keys())
    if (owner != type && std::find(keys.begin(), keys.end(), key) != keys.end()) owners.push_back(owner);
  if (owners.empty()) return std::nullopt;
  return Problem{fmt::format("unknown key for type {}", type),
                 fmt::format("remove it ({} applies only to type {})", key, fmt::join(owners, ", "))};
}

bool snapshot_tool(const Destination& d) { return d.type == "kopia" || d.type == "restic"; }

// Mirrors squirrel writes itself; everything else goes through rclone.
bool native_mirror(const Destination& d) {
  return d.layout == "mirror" && !d.crypt && (d.type == "local" || d.type == "sftp");
}

bool rclone_written(const Destination& d) { return !snapshot_tool(d) && d.type != "local" && !native_mirror(d); }

// restic names remote repositories as "<backend>:<location>"; only a plain
// path is a local directory that needs ~ expansion.
bool restic_url(std::string_view root) {
  static const Keys backends = {"local:", "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"};
  return std::any_of(backends.begin(), backends.end(), [&](std::string_view b) { return root.starts_with(b); });
}

std::string parse_root(Section& s, const Destination& d) {
  std::string root = s.required_string("root", "\"/path/or/sub/path\"");
  bool local_path = d.type == "local" || d.type == "kopia" || (d.type == "restic" && !restic_url(root));
  if (!local_path) return root;
  return s.path_value("root")->string();
}

// rclone obscuring is base64url (no padding) of a 16-byte IV plus the
// ciphertext, so a value that decodes to exactly 16 bytes hides nothing.
std::optional<std::string> obscured_problem(std::string_view value) {
  auto base64url = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  };
  if (!std::all_of(value.begin(), value.end(), base64url) || value.size() % 4 == 1)
    return "is not an rclone-obscured value";
  std::size_t decoded_bytes = value.size() * 3 / 4;
  if (decoded_bytes < 16) return "is too short to be an rclone-obscured value";
  if (decoded_bytes == 16) return "reveals to an empty password";
  return std::nullopt;
}

Crypt parse_crypt(Section& s) {
  Crypt crypt;
  auto password = s.secret("password", Section::Need::required);
  if (!password)
    fail_at(s.file(), s.line(), s.key_path("password"), "missing required key",
            "add password = { env = \"VAR\" } (or a literal string)");
  crypt.password = *password;
  crypt.password2 = s.secret("password2");
  crypt.obscured = s.boolean("obscured").value_or(false);
  if (crypt.obscured) {
    if (auto problem = obscured_problem(crypt.password))
      s.fail("password", *problem, "write the output of `rclone obscure`, or set obscured = false");
    if (crypt.password2)
      if (auto problem = obscured_problem(*crypt.password2))
        s.fail("password2", *problem, "write the output of `rclone obscure`, or set obscured = false");
  }
  s.reject_unknown();
  return crypt;
}

void parse_layout_and_crypt(Section& s, Destination& d) {
  if (snapshot_tool(d)) {
    if (s.has("layout"))
      s.fail("layout", fmt::format("{} keeps its own repository format", d.type), "remove the layout line");
  } else {
    d.layout = s.choice("layout", kLayouts).value_or("mirror");
  }
  if (!s.has("crypt")) return;
  if (d.type == "local" || snapshot_tool(d))
    s.fail("crypt", fmt::format("crypt is not supported on a {} destination", d.type),
           fmt::format("remove the [{}] table", s.key_path("crypt")));
  Section crypt = *s.table("crypt");
  d.crypt = parse_crypt(crypt);
}

void parse_transfer_knobs(Section& s, Destination& d) {
  if (auto concurrency = s.integer("concurrency", 1, INT_MAX)) d.concurrency = static_cast<int>(*concurrency);
  if (auto checkers = s.integer("checkers", 1, INT_MAX)) {
    if (!rclone_written(d))
      s.fail("checkers", fmt::format("is not used by this {} destination (squirrel writes it without rclone)", d.type),
             "remove it");
    d.checkers = static_cast<int>(*checkers);
  }
  d.verify_every_ns = s.duration("verify_every", DurationRule::cadence);
  bool verifiable = d.layout == "content-addressed" || d.layout == "packed" || native_mirror(d);
  if (d.verify_every_ns && !verifiable)
    s.fail("verify_every",
           "applies only to content-addressed and packed layouts and to local or sftp mirrors without crypt",
           "remove it");
}

void parse_pack_knobs(Section& s, Destination& d) {
  for (std::string_view key : {"pack_threshold", "pack_size", "zstd_level"})
    if (s.has(key) && d.layout != "packed")
      s.fail(key, "applies only to layout = \"packed\"",
             snapshot_tool(d) ? "remove it" : "remove it or set layout = \"packed\"");
  if (d.layout != "packed") return;
  d.pack_threshold = s.size("pack_threshold").value_or(32LL << 20);
  d.pack_size = s.size("pack_size").value_or(512LL << 20);
  d.zstd_level = static_cast<int>(s.integer("zstd_level", 1, 4).value_or(3));
}

void parse_sftp(Section& s, Destination& d) {
  d.host = s.required_string("host", "\"nas.example.net\"");
  d.user = s.required_string("user", "\"backup\"");
  if (auto port = s.integer_or_digits("port", 1, 65535)) d.port = static_cast<int>(*port);
  if (auto key_file = s.path_value("key_file")) d.key_file = key_file->string();
  if (auto known_hosts = s.path_value("known_hosts_file")) d.known_hosts_file = known_hosts->string();
  d.host_key_algorithms = s.optional_string("host_key_algorithms");
  d.password = s.secret("password");
  d.hash_algo = s.choice("hash_algo", kHashAlgos);
  // A mirror squirrel writes proves copies with the server's own hash
  // command, compared with the same digest of the bytes sent.
  static const Keys comparable = {"md5", "sha1", "sha256", "blake3"};
  if (d.hash_algo && d.layout == "mirror" && !d.crypt && std::find(comparable.begin(), comparable.end(), *d.hash_algo) == comparable.end())
    s.fail("hash_algo", "on an sftp mirror must be a hash squirrel can compute too",
           "use blake3 (b3sum), sha256, sha1 or md5, or remove it to let squirrel pick b3sum, else sha256sum");
  bool hashed_by_server = d.layout == "content-addressed" || (d.layout == "packed" && !d.crypt);
  if (!d.hash_algo && hashed_by_server) d.hash_algo = "sha256";
}

void parse_buckets(Section& s, Destination& d) {
  if (d.type == "s3") {
    d.provider = s.required_string("provider", "\"AWS\"");
    d.bucket = s.required_string("bucket", "\"my-bucket\"");
    d.region = s.optional_string("region");
    d.endpoint = s.optional_string("endpoint");
    d.storage_class = s.optional_string("storage_class");
    d.force_path_style = s.boolean("force_path_style");
    d.access_key_id = s.secret("access_key_id");
    d.secret_access_key = s.secret("secret_access_key");
  } else if (d.type == "b2") {
    d.bucket = s.required_string("bucket", "\"my-bucket\"");
    d.account_id = s.secret("account_id");
    d.application_key = s.secret("application_key");
  } else if (d.type == "gcs") {
    d.bucket = s.required_string("bucket", "\"my-bucket\"");
    if (auto file = s.path_value("service_account_file")) d.service_account_file = file->string();
    d.service_account_credentials = s.secret("service_account_credentials");
    if (d.service_account_file && d.service_account_credentials)
      s.fail("service_account_credentials", "is set together with service_account_file", "keep only one of the two");
  }
}

void parse_snapshot_tool(Section& s, Destination& d) {
  d.password = s.secret("password", Section::Need::required);
  if (!d.password)
    fail_at(s.file(), s.line(), s.key_path("password"), "missing required key",
            fmt::format("add password = {{ env = \"VAR\" }} with the {} repository password", d.type));
  if (d.type != "kopia") return;
  d.verify_files_percent = s.number("verify_files_percent").value_or(10.0);
  if (!(*d.verify_files_percent > 0 && *d.verify_files_percent <= 100))
    s.fail("verify_files_percent", fmt::format("{} is outside (0, 100]", *d.verify_files_percent),
           "use a share of bytes greater than 0 and at most 100, such as 10");
}

}  // namespace

Destination parse_destination(Section& s, const std::string& name) {
  Destination d;
  d.name = name;
  d.line = s.line();
  auto type = s.choice("type", kTypes);
  if (!type)
    fail_at(s.file(), s.line(), s.key_path("type"), "missing required key",
            "add type = \"local\" (or sftp, s3, b2, gcs, kopia, restic)");
  d.type = *type;
  d.root = parse_root(s, d);
  parse_layout_and_crypt(s, d);
  parse_transfer_knobs(s, d);
  parse_pack_knobs(s, d);
  if (d.type == "sftp") parse_sftp(s, d);
  if (d.type == "s3" || d.type == "b2" || d.type == "gcs") parse_buckets(s, d);
  if (snapshot_tool(d)) parse_snapshot_tool(s, d);
  s.reject_unknown([&d](std::string_view key) { return other_type_hint(d.type, key); });
  return d;
}

}  // namespace sq::config::detail
