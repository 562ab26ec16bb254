#include "engine/dest/sftp/server_hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "core/digest.hpp"
#include "core/text.hpp"

namespace sq::dest::sftp {

namespace {

constexpr const char* kProbeInput = "squirrel server hash probe\n";

std::string tool_of(const std::string& algo) { return algo == "blake3" ? "b3sum" : algo + "sum"; }

// xargs hands the NUL-terminated names to the tool as arguments after
// "--": no shell parses them, and a name starting with '-' is not an
// option. One process hashes many files.
std::string batch_command(const std::string& algo) { return fmt::format("LC_ALL=C xargs -0 {} --", tool_of(algo)); }

// Tests only: SQUIRREL_TEST_SILENT_SERVER_HASH=1 makes the hash command of
// a batch say nothing until its connection ends, so a test can give it up
// as stalled without racing a real hash.
bool silent_for_tests() {
  const char* v = std::getenv("SQUIRREL_TEST_SILENT_SERVER_HASH");
  return v && std::string_view(v) == "1";
}

std::string batch_command_for_paths(const std::string& algo) {
  if (silent_for_tests()) return "while kill -0 $PPID 2>/dev/null; do sleep 1; done";
  return batch_command(algo);
}

bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The first field of every output line, one per name.
std::optional<std::vector<std::string>> parse(const std::string& out, const std::string& algo, std::size_t expected) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) return std::nullopt;
    std::string line = out.substr(start, end - start);
    // A name with a newline or backslash is printed escaped, the line
    // then starting with a backslash.
    if (line.starts_with("\\")) line.erase(0, 1);
    fields.push_back(line.substr(0, line.find(' ')));
    start = end + 1;
  }
  if (fields.size() != expected) return std::nullopt;
  for (const auto& f : fields)
    if (f.size() != digest_hex_length(algo) || !is_lower_hex(f)) return std::nullopt;
  return fields;
}

std::string try_algo(Connection& c, const std::string& algo) {
  std::string command = fmt::format("printf 'squirrel server hash probe\\n' | {} && {}", tool_of(algo),
                                    batch_command(algo));
  auto r = c.exec(command, std::string("/dev/null", 10), 4096);
  if (!r) return "the server runs no commands for this account";
  auto fields = parse(r->out, algo, 2);
  if (!fields || r->status != 0) return fmt::format("{} did not work on the server", tool_of(algo));
  if ((*fields)[0] != digest_hex(algo, kProbeInput) || (*fields)[1] != digest_hex(algo, ""))
    return fmt::format("{} on the server computed a wrong digest of a known input", tool_of(algo));
  return "";
}

}  // namespace

std::string probe_server_hash(Connection& c, const std::optional<std::string>& pinned, std::string* problem) {
  std::vector<std::string> candidates = pinned ? std::vector<std::string>{*pinned}
                                               : std::vector<std::string>{"blake3", "sha256"};
  std::string why;
  for (const auto& algo : candidates) {
    if (!is_supported_digest(algo)) {
      why = fmt::format("hash_algo {} cannot be compared by squirrel — use blake3, sha256, sha1 or md5", algo);
      continue;
    }
    why = try_algo(c, algo);
    if (why.empty()) return algo;
  }
  if (problem) *problem = why;
  return "";
}

std::vector<std::string> server_hashes(Connection& c, const std::string& algo, const std::vector<std::string>& paths) {
  std::string input;
  for (const auto& p : paths) input += p + '\0';
  auto r = c.exec(batch_command_for_paths(algo), input, 256 * paths.size() + 4096);
  auto fields = r && r->status == 0 ? parse(r->out, algo, paths.size()) : std::nullopt;
  if (!fields)
    throw TransportError(EIO, fmt::format("the server's {} could not hash {}{}", tool_of(algo),
                                          escape_for_display(paths.front()),
                                          paths.size() > 1 ? fmt::format(" and {} more", paths.size() - 1) : ""));
  return *fields;
}

}  // namespace sq::dest::sftp
