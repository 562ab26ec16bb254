// [volumes.<name>] and its hook: the cadences and the offload policy.
#include <fmt/format.h>

#include <set>

#include "config/loader.hpp"
#include "core/text.hpp"

namespace sq::config::detail {

namespace {

Hook parse_hook(Section& s) {
  Hook hook;
  auto command = s.string_list("command");
  if (!command)
    fail_at(s.file(), s.line(), s.key_path("command"), "missing required key",
            "add command = [\"/path/to/program\", \"arg\"] (run without a shell)");
  if (command->empty()) s.fail("command", "is an empty list", "name the program to run as the first element");
  for (const auto& item : *command)
    if (item.value.empty()) fail_at(s.file(), item.line, item.key_path, "is empty", "remove the empty element");
  for (auto& item : *command) hook.command.push_back(std::move(item.value));
  if (auto timeout = s.duration("timeout", DurationRule::positive)) hook.timeout_ns = *timeout;
  hook.interval_ns = s.duration("interval", DurationRule::cadence);
  s.reject_unknown();
  return hook;
}

bool declared(const Config& cfg, const std::string& name) {
  return cfg.destination(name) != nullptr || cfg.node(name) != nullptr;
}

[[noreturn]] void undeclared(const Section& s, const Section::ListItem& item) {
  fail_at(s.file(), item.line, item.key_path,
          fmt::format("{} is not a declared destination or node", quote_text(item.value)),
          "declare it under [destinations] or [nodes], or fix the name");
}

// The reference syncs a target named twice once; `config check` warns.
std::vector<std::string> parse_sync_to(Section& s, const Config& cfg, std::vector<std::string>& repeated) {
  std::vector<std::string> names;
  auto list = s.string_list("sync_to");
  if (!list) return names;
  std::set<std::string> seen;
  for (auto& item : *list) {
    if (!declared(cfg, item.value)) undeclared(s, item);
    if (!seen.insert(item.value).second) {
      repeated.push_back(std::move(item.value));
      continue;
    }
    names.push_back(std::move(item.value));
  }
  return names;
}

// A name declared nowhere here may be a target only a peer pushes to, whose
// evidence that peer relays; it must still be a valid name and listed once.
void check_required(const Section& s, const Section::ListItem& item, std::set<std::string>& seen) {
  if (!valid_name(item.value))
    fail_at(s.file(), item.line, item.key_path, fmt::format("{} is not a valid target name", quote_text(item.value)),
            "name a destination or node: letters, digits, '_' and '-', starting with a letter or digit");
  if (!seen.insert(item.value).second)
    fail_at(s.file(), item.line, item.key_path, fmt::format("{} is listed twice", quote_text(item.value)),
            "remove the duplicate");
}

// Naming a target that can never prove content would make the volume
// silently un-offloadable, so it is refused here rather than at offload time.
std::vector<std::string> parse_offload_requires(Section& s, const Config& cfg) {
  std::vector<std::string> names;
  auto list = s.string_list("offload_requires");
  if (!list) return names;
  std::set<std::string> seen;
  for (auto& item : *list) {
    check_required(s, item, seen);
    const Destination* dest = cfg.destination(item.value);
    if (dest && !dest->can_ever_gate_offload())
      fail_at(s.file(), item.line, item.key_path,
              fmt::format("{} is a mirror behind crypt, which can never prove file content", quote_text(item.value)),
              "remove it from offload_requires or give that destination layout = \"content-addressed\" or \"packed\"");
    names.push_back(std::move(item.value));
  }
  return names;
}

std::optional<std::int64_t> parse_evidence_age(Section& s, std::optional<std::int64_t> fallback) {
  const std::string_view key = "offload_max_evidence_age";
  auto text = s.optional_string(key);
  if (!text) return fallback;
  if (*text == "off") return std::nullopt;
  auto age = checked_duration_ns(*text);
  if (!age || *age < 1000000000LL)
    s.fail(key, fmt::format("{} is not a duration of at least 1s", quote_text(*text)),
           "write a duration such as \"30d\", or \"off\" to disable the limit");
  return age;
}

}  // namespace

Volume parse_volume(Section& s, const std::string& name, const Config& declared_targets) {
  Volume volume;
  volume.name = name;
  volume.line = s.line();
  s.required_string("path", "\"/path/to/the/folder\"");
  volume.path = *s.path_value("path");
  volume.sync_to = parse_sync_to(s, declared_targets, volume.sync_to_repeated);
  volume.sync_every_ns = s.duration("sync_every", DurationRule::cadence);
  volume.index_every_ns = s.duration("index_every", DurationRule::cadence);
  if (volume.sync_every_ns && volume.index_every_ns && *volume.index_every_ns >= *volume.sync_every_ns)
    s.fail("index_every", "must be shorter than sync_every (a scheduled sync already indexes first)",
           "shorten index_every or remove it");
  volume.offload_requires = parse_offload_requires(s, declared_targets);
  volume.offload_max_evidence_age_ns = parse_evidence_age(s, volume.offload_max_evidence_age_ns);
  if (auto hook = s.table("hook")) volume.hook = parse_hook(*hook);
  s.reject_unknown();
  return volume;
}

}  // namespace sq::config::detail
