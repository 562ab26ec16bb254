#pragma once
// The names squirrel reserves inside a volume (sync-offload-restore §1.5),
// decided in one place: the walk never records them as user data, and the
// queries that plan, gate, restore and judge copies leave them out by the
// very same rule (store::kOutsideReserved).
//
// - At the volume's top, every entry named ".squirrel-*": the marker,
//   .squirrel-restore-history/ (files `restore --in-place` moved aside),
//   and the destination-side .squirrel-index/, .squirrel-staging/,
//   .squirrel-history/ and .squirrel-conflicts/.
// - Anywhere, a file named like the temp file a restore writes beside its
//   target (".squirrel-restore-<run>-<16 hex>").
#include <string_view>

namespace sq {

inline constexpr std::string_view kReservedPrefix = ".squirrel-";

// An entry at the top of a volume that squirrel reserves.
bool reserved_at_root(std::string_view name);

// A file name in the shape of a restore's temp file, in any folder. Matches
// exactly what kRestoreTempGlob matches: ".squirrel-restore-", a digit 1-9,
// anything, "-", then 16 lowercase hex digits.
bool restore_temp_like(std::string_view name);
inline constexpr const char* kRestoreTempGlob =
    ".squirrel-restore-[1-9]*-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]";

// A file `name` in `folder` ("" is the top) that one of the rules above
// reserves: it is never user data, never copied, never restored.
bool reserved_file(std::string_view folder, std::string_view name);

}  // namespace sq
