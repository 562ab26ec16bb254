#pragma once
// squirrel's own files name every file of a person's volumes and its hash
// (the index, its -wal and -shm, its snapshots), so they are created for the
// owner only. The mode is set explicitly, never left to the umask, and before
// a byte is written: no other account ever sees such a file readable.
// Files and directories already there keep their mode; a person may have
// chosen it, and they are told about it (engine/privacy.hpp), not overruled.
#include <sys/types.h>

#include <filesystem>
#include <system_error>

#include "core/fs.hpp"

namespace sq {

inline constexpr mode_t kPrivateFileMode = 0600;
inline constexpr mode_t kPrivateDirMode = 0700;

// Creates `path` exclusively, empty, mode 0600 and open for writing. An
// invalid Fd when something (even a dangling symlink) is already there, with
// `ec` clear; an invalid Fd with `ec` set on any other failure.
Fd create_private_file(const std::filesystem::path& path, std::error_code& ec);
// The same, throwing Error(io) on a failure.
Fd create_private_file(const std::filesystem::path& path);

// std::filesystem::create_directories, except that each directory it makes
// is mode 0700. Directories already there are left as they are.
void create_private_directories(const std::filesystem::path& dir, std::error_code& ec);

}  // namespace sq
