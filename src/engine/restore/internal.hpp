#pragma once
// Pieces of `restore` shared by its translation units: what one file to
// restore is, how the mirror is read without an index (listing.cpp),
// the one safe write path every restored file goes through
// (write.cpp), and the parallel driver over a list of files
// (run.cpp).
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "engine/dest/transport.hpp"
#include "engine/sync/packed/member_reader.hpp"
#include "engine/restore/restore.hpp"
#include "store/files.hpp"

namespace sq::engine::restore_detail {

struct RestoreItem {
  std::string path;                 // volume-relative
  std::optional<Digest> hash;       // what the bytes must hash to; empty: nothing vouches for them
  std::int64_t size = -1;           // expected size; -1 when unknown (an unnamed file)
  std::int64_t mtime_ns = 0;
  std::int64_t content_id = 0;      // indexed restores only
  bool revive = false;              // indexed: the row is offloaded or missing; restoring flips it to present
  bool missing = false;             // indexed: the index calls it missing (deleted, not offloaded)
  std::string source;               // name at the destination; empty when no copy is recorded
  // A member of the pack `source` (packed layout): where its bytes lie in
  // the pack's uncompressed tar. -1: `source` is the file itself.
  std::int64_t member_offset = -1, member_length = 0;
  std::vector<std::string> others;  // other recorded copies of the same content there, best first
};

// ---- restore without an index (listing.cpp) ------------------------------

using WarnFn = std::function<void(const std::string& path, const std::string& message)>;

struct MirrorListing {
  std::vector<RestoreItem> items;        // every file found, named ones carrying their receipt's hash
  std::int64_t unnamed = 0;              // files no receipt names (restored unchecked)
  std::int64_t companions_skipped = 0;   // AppleDouble "._X" beside X that no receipt names
  std::int64_t others_skipped = 0;       // symlinks, devices, sockets …
  std::int64_t receipts_read = 0, receipts_unreadable = 0;
};

// Folds the receipts under <volume>/.squirrel-index/ (oldest run first, the
// latest entry for a path wins) and walks the mirror at <volume>/, skipping
// the reserved .squirrel-* entries and the marker at the volume root.
MirrorListing list_mirror(dest::Transport& t, const std::string& volume, const WarnFn& warn);
// A content-addressed or packed destination: the segments under
// <volume>/index/ replayed oldest first; each file's source is the pack
// member the placement maps (packs/map-*) name, else objects/<its hash>.
MirrorListing list_content(dest::Transport& t, const std::string& volume, const WarnFn& warn);

// ---- the safe write path (write.cpp) -------------------------------------

// A copy buffer aligned for O_DIRECT writes.
class CopyBuffer {
 public:
  static constexpr std::size_t kAlign = 4096;
  explicit CopyBuffer(std::size_t size)
      : size_(size), data_(static_cast<char*>(::operator new[](size, std::align_val_t(kAlign)))) {}
  ~CopyBuffer() { ::operator delete[](data_, std::align_val_t(kAlign)); }
  CopyBuffer(const CopyBuffer&) = delete;
  CopyBuffer& operator=(const CopyBuffer&) = delete;
  char* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_;
  char* data_;
};

// Thrown when the streamed bytes do not hash to what the item expects.
class MismatchError : public Error {
 public:
  using Error::Error;
};

// Opens (creating as needed) the directory that will hold `path`, one
// component at a time and never through a symlink.
Fd open_parent(int base, const std::string& path);
// Opens an existing directory beneath base without following symlinks;
// an invalid Fd when it is gone.
Fd open_existing_dir(int base, const std::string& folder);
// True when `name` in `parent` is a regular file with exactly the expected bytes.
bool already_correct(int parent, const std::string& name, const RestoreItem& it, CopyBuffer& buf);
// Streams the item's copy into `tmp` (created exclusively in `parent`) while
// hashing, checks size and hash and sets the mtime; making it durable is
// the caller's (a batch at a time, restore/run.cpp). On any failure
// the temp file is removed, so bad or partial bytes never stay behind.
// Returns the number of bytes written.
// A pack member is read through `cursors` when given (see
// sync/packed/member_reader.hpp).
std::int64_t fetch_verified(dest::Transport& t, int parent, const std::string& tmp, const RestoreItem& it,
                            CopyBuffer& buf, sync::packed::MemberCursors* cursors = nullptr);
// renameat2(RENAME_NOREPLACE); throws when the target exists.
void move_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to);

// The name of the temp file beside `name` for run `run_id`.
std::string temp_name(std::int64_t run_id, const std::string& name);
// The run id in a name of exactly temp_name's form; nullopt for any other name.
std::optional<std::int64_t> temp_name_run(const std::string& name);

// A temp file a killed restore left beside its target, as found on disk.
struct LeftoverTemp {
  std::int64_t run_id = 0;
  std::int64_t ctime_ns = 0;  // when its inode last changed: only its run wrote it
};
// Whether a leftover is provably squirrel's own and safe to remove: its
// run is a restore run that is over (the DB decides; restore.cpp).
using IsOwnLeftover = std::function<bool(const LeftoverTemp&)>;
struct LeftoverCleanup {
  std::int64_t removed = 0;
  std::vector<std::int64_t> runs;  // the interrupted runs whose temps were removed, ascending
};
// Removes, in every existing folder that holds a target of `items`, the
// regular files named like a restore temp that `own` vouches for. Nothing
// else is touched (no code path deletes bytes it did not create). A temp
// that cannot be removed is reported through `warn` and left alone.
LeftoverCleanup remove_leftover_temps(int base, const std::vector<RestoreItem>& items, const IsOwnLeftover& own,
                                      const WarnFn& warn);
inline constexpr std::size_t kCopyBuffer = 2 << 20;

}  // namespace sq::engine::restore_detail

// ---- restoring a list of items (run.cpp) ---------------------------------

namespace sq::engine::restore_detail {

struct RestoreTarget {
  dest::Transport& t;
  int base;                        // the open target root
  std::int64_t run_id;
  const RestoreOptions& opts;
  const RestoreListener& listener;
  bool revive_rows;                // restoring into the volume itself: offloaded rows become present
  sync::packed::MemberCursors* cursors = nullptr;  // streams of packs read so far (packed layout)
};

// Restores every item with a source, several files in flight, then flushes
// every directory that gained a name. Counts into `rep`; returns the
// offloaded rows to flip back to present. Per-file errors are counted and
// reported; anything else (a crash of the transport) stops the run.
std::vector<store::OffloadFlip> restore_items(const RestoreTarget& target, const std::vector<RestoreItem>& items,
                                              RestoreReport& rep);

}  // namespace sq::engine::restore_detail
