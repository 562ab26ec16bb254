#include "core/reserved.hpp"

#include <algorithm>

namespace sq {

namespace {
constexpr std::string_view kTempPrefix = ".squirrel-restore-";
constexpr std::size_t kTempHexDigits = 16;
}  // namespace

bool reserved_at_root(std::string_view name) { return name.starts_with(kReservedPrefix); }

bool restore_temp_like(std::string_view name) {
  if (!name.starts_with(kTempPrefix) || name.size() < kTempPrefix.size() + 2 + kTempHexDigits) return false;
  char first = name[kTempPrefix.size()];
  auto hex = name.substr(name.size() - kTempHexDigits);
  return first >= '1' && first <= '9' && name[name.size() - kTempHexDigits - 1] == '-' &&
         std::all_of(hex.begin(), hex.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool reserved_file(std::string_view folder, std::string_view name) {
  if (folder.empty() ? reserved_at_root(name) : folder.starts_with(kReservedPrefix)) return true;
  return restore_temp_like(name);
}

}  // namespace sq
