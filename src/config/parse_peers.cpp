// [nodes.<name>], [agent], [backups], and the one-namespace rule that ties
// volumes, destinations and nodes together.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>

#include "config/loader.hpp"

namespace sq::config::detail {

namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_port(std::string_view text) {
  if (!all_digits(text) || text.size() > 5) return false;
  int port = std::stoi(std::string(text));
  return port >= 1 && port <= 65535;
}

// "host:port", "[v6]:port" or ":port"; the host may be empty (all interfaces).
bool valid_host_port(std::string_view text, bool host_required) {
  if (text.find_first_of(" \t\r\n/?#@") != std::string_view::npos) return false;
  std::string_view host = text;
  std::string_view port;
  if (text.starts_with("[")) {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (!rest.starts_with(":") || !valid_port(rest.substr(1)))) return false;
    return !host.empty();
  }
  std::size_t colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos || !valid_port(port)) return false;
  }
  return !host_required || !host.empty();
}

std::optional<std::string> endpoint_problem(std::string_view url) {
  std::string lower = lowercase(url);
  std::size_t scheme_length = lower.starts_with("https://") ? 8 : lower.starts_with("http://") ? 7 : 0;
  if (scheme_length == 0) return "must start with http:// or https://";
  std::string_view rest = url.substr(scheme_length);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return "has no host";
  if (!valid_host_port(authority, true)) return "has an invalid host or port";
  return std::nullopt;
}

std::optional<std::string> normalised_fingerprint(std::string_view text) {
  std::string lower = lowercase(text);
  if (!lower.starts_with("sha256:")) return std::nullopt;
  std::string_view hex = std::string_view(lower).substr(7);
  bool is_hex =
      std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  if (hex.size() != 64 || !is_hex) return std::nullopt;
  return lower;
}

void parse_node_tls(Section& tls, Node& node) {
  if (auto text = tls.optional_string("cert_fingerprint")) {
    node.cert_fingerprint = normalised_fingerprint(*text);
    if (!node.cert_fingerprint)
      tls.fail("cert_fingerprint", fmt::format("{} is not a sha256 pin", quote_text(*text)),
               "write \"sha256:\" followed by 64 hex digits, as printed by `squirrel agent cert` on the peer");
  }
  tls.reject_unknown();
}

}  // namespace

Node parse_node(Section& s, const std::string& name) {
  Node node;
  node.name = name;
  node.line = s.line();
  if (s.has("path"))
    s.fail("path", "obsolete key (a peer's bytes now travel over its endpoint)", "delete the path line");
  node.endpoint = s.required_string("endpoint", "\"https://peer.example.net:8443\"");
  if (auto problem = endpoint_problem(node.endpoint))
    s.fail("endpoint", fmt::format("{} {}", quote_text(node.endpoint), *problem),
           "write the peer's agent URL, such as \"https://peer.example.net:8443\"");
  auto auth = s.table("auth");
  if (!auth)
    fail_at(s.file(), s.line(), s.key_path("auth") + ".bearer", "missing required key",
            fmt::format("add [{}] with bearer = {{ env = \"VAR\" }}", s.key_path("auth")));
  auto bearer = auth->secret("bearer", Section::Need::required);
  if (!bearer)
    fail_at(s.file(), auth->line(), auth->key_path("bearer"), "missing required key",
            "add bearer = { env = \"VAR\" } (the token this peer accepts from us)");
  node.bearer = *bearer;
  auth->reject_unknown();
  if (auto tls = s.table("tls")) parse_node_tls(*tls, node);
  node.dedup_strategy = s.choice("dedup_strategy", {"copy", "off"}).value_or("copy");
  node.pull_durability_every_ns = s.duration("pull_durability_every", DurationRule::cadence);
  s.reject_unknown();
  return node;
}

namespace {

void parse_agent_tls(Section& tls, Agent& agent) {
  agent.tls_cert = tls.path_value("cert");
  agent.tls_key = tls.path_value("key");
  if (agent.tls_cert && !agent.tls_key)
    tls.fail("cert", "is set without key", "set both cert and key, or neither for plain HTTP");
  if (agent.tls_key && !agent.tls_cert)
    tls.fail("key", "is set without cert", "set both cert and key, or neither for plain HTTP");
  tls.reject_unknown();
}

// Each token identifies one caller, so a shared or reused token would let
// one peer act as another.
void parse_agent_auth(Section& auth, Agent& agent) {
  agent.auth_token = auth.secret("token");
  std::map<std::string, std::string> owner_of_token;  // token -> key path that holds it
  if (agent.auth_token) owner_of_token[*agent.auth_token] = auth.key_path("token");
  if (auto peers = auth.table("peers")) {
    for (auto& [name, peer] : peers->named_tables()) {
      auto bearer = peer.secret("bearer", Section::Need::required);
      if (!bearer)
        fail_at(peer.file(), peer.line(), peer.key_path("bearer"), "missing required key",
                "add bearer = { env = \"VAR\" } (the token this peer presents)");
      auto [it, fresh] = owner_of_token.emplace(*bearer, peer.key_path("bearer"));
      if (!fresh)
        peer.fail("bearer", fmt::format("is the same token as {}", it->second),
                  "give every peer its own token, different from token");
      peer.reject_unknown();
      agent.peer_bearers.emplace(name, *bearer);
    }
  }
  auth.reject_unknown();
}

}  // namespace

Agent parse_agent(Section& s) {
  Agent agent;
  if (auto listen = s.optional_string("listen")) {
    if (!valid_host_port(*listen, false) || listen->find(':') == std::string::npos)
      s.fail("listen", fmt::format("{} is not host:port", quote_text(*listen)),
             "write an address such as \"0.0.0.0:8443\"");
    agent.listen = listen;
  }
  agent.db = parse_db_path(s, "db");
  if (auto tls = s.table("tls")) parse_agent_tls(*tls, agent);
  if (auto auth = s.table("auth")) parse_agent_auth(*auth, agent);
  if (agent.listen && !agent.auth_token)
    fail_at(s.file(), s.line_of("listen"), s.key_path("auth") + ".token", "is required when listen is set",
            fmt::format("add [{}] with token = {{ env = \"VAR\" }}", s.key_path("auth")));
  agent.scan_interval_ns = s.duration("scan_interval", DurationRule::non_negative);
  agent.scan_strategy = s.choice("scan_strategy", {"shallow", "deep"}).value_or("shallow");
  agent.verify_every_ns = s.duration("verify_every", DurationRule::cadence);
  s.reject_unknown();
  return agent;
}

Backups parse_backups(Section& s) {
  Backups backups;
  backups.enabled = s.boolean("enabled").value_or(true);
  backups.dir = s.path_value("dir");
  backups.keep = static_cast<int>(s.integer("keep", 0, INT_MAX).value_or(7));
  backups.cloud = s.boolean("cloud").value_or(true);
  backups.cloud_keep = static_cast<int>(s.integer("cloud_keep", 0, INT_MAX).value_or(7));
  s.reject_unknown();
  return backups;
}

void check_namespace(const std::string& file, const Config& cfg) {
  struct Declared {
    std::string section;
    int line;
  };
  std::map<std::string, Declared> seen;
  auto declare = [&](const std::string& section, const std::string& name, int line) {
    auto [it, fresh] = seen.emplace(name, Declared{section, line});
    if (fresh) return;
    // Point at whichever declaration comes second in the file.
    Declared first = it->second, second{section, line};
    if (second.line < first.line) std::swap(first, second);
    fail_at(file, second.line, second.section + "." + name,
            fmt::format("name already used by {}.{} at line {}", first.section, name, first.line),
            "destinations and nodes share one namespace (sync_to names either); rename one of them");
  };
  // Only targets share a namespace (sync_to names either kind); a volume
  // may carry the name of the destination it syncs to, as in the reference.
  for (const auto& [name, d] : cfg.destinations) declare("destinations", name, d.line);
  for (const auto& [name, n] : cfg.nodes) declare("nodes", name, n.line);
  // rclone gets a "<name>-crypt" section next to "<name>"; it must not shadow a real one.
  for (const auto& [name, d] : cfg.destinations) {
    const Destination* clash = d.crypt ? cfg.destination(name + "-crypt") : nullptr;
    if (clash)
      fail_at(file, clash->line, "destinations." + clash->name,
              fmt::format("name collides with the crypt overlay of destinations.{} (line {})", name, d.line),
              "rename one of the two destinations");
  }
}

}  // namespace sq::config::detail
