#pragma once
// The commented starter config `squirrel init` writes: one volume and one
// local destination, every other section commented out. It loads as it
// is (tests pin that), so a newcomer only edits the two paths.
#include <string>

namespace sq::config {

inline constexpr const char* kStarterVolume = "documents";
inline constexpr const char* kStarterDestination = "backup-disk";
inline constexpr const char* kStarterVolumePath = "~/Documents";
inline constexpr const char* kStarterDestinationRoot = "/media/backup-disk/squirrel";

std::string starter_config();

}  // namespace sq::config
