#pragma once
// Sync of one volume to one native mirror destination (type "local").
// Driver order: resolve the volume (config = DB = marker) → destination
// marker → gated run → reconcile leftovers → plan from records → stage,
// flush, read back, displace, commit (each move journaled first) → seal the
// receipt → finish and advance evidence in one transaction → ride-along
// index snapshot.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/fsinfo.hpp"
#include "engine/dest/sftp/sftp.hpp"
#include "engine/dest/transport.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine::sync {

struct SyncEvent {
  enum class Type { progress, warning, file_error };
  Type type = Type::progress;
  std::string path, message;
  std::int64_t files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;
};
using SyncListener = std::function<void(const SyncEvent&)>;

// Opens the transport for a destination root; tests inject faults here.
using TransportFactory = std::function<std::unique_ptr<dest::Transport>(const std::string& root)>;

struct SyncOptions {
  bool dry_run = false;
  bool init = false;
  // --shallow: the reference's switch from a checksum to size+mtime on
  // rclone mirrors. A native mirror reads every copy back, so there is no
  // comparison to switch off and the push refuses it.
  bool shallow = false;
  std::size_t batch_files = 1024;
  std::int64_t batch_bytes = 256LL << 20;
  // Paths staged or renamed into place at once: one waits for the device
  // while another is hashed (read-backs, which mostly wait, run four times
  // as many). 0: the destination's `concurrency` (default 4 on a disk, 8
  // over SFTP, where each path mostly waits for the server). 1 keeps the
  // transport calls in a fixed order.
  std::size_t in_flight = 0;
  TransportFactory transport;  // default: the local transport
  // --allow-volatile: --init may start a destination on a memory filesystem
  // (tmpfs …). Its copies are still never recorded as durable.
  bool allow_volatile = false;
  // Which filesystem the destination is on (default sq::fs_info). Tests
  // that use a memory filesystem only for speed stand in a disk here.
  std::function<FsInfo(const std::filesystem::path&)> fs_probe;
  // Every call to the destination is bounded by this (spec §6.5); the
  // destination's name is filled in by the push.
  dest::StallOptions stall;
};

struct SyncReport {
  std::string volume, destination;
  std::int64_t run_id = 0;
  store::RunStatus status = store::RunStatus::success;
  std::string error;
  bool dry_run = false, initialized = false;
  std::int64_t planned = 0, written = 0, bytes = 0, already_live = 0;
  std::int64_t displaced = 0, displaced_unrecorded = 0, drift = 0, failed = 0, reconciled = 0;
  std::string method;               // what the evidence advance recorded ("" when none)
  std::string volatile_fs;          // the memory filesystem the copies are on ("" on a disk)
  bool evidence_advanced = false;
  std::vector<std::string> foreign; // unrecorded entries moved to history
  // A first push onto copies squirrel had no record of (adopt.cpp): copies
  // adopted after a read-back (dry run: that would be read back), and the
  // files there that stay foreign.
  std::int64_t adopted = 0, left_foreign = 0;
  std::string snapshot_warning;
  // A packed destination: packs landed; a dry run's preview of what would
  // be packed (contents, their bytes, packs at pack_size each: an estimate).
  std::int64_t packs = 0, pack_contents = 0, pack_bytes = 0, packs_estimated = 0;
};

// The destination's config, refusing anything but a mirror squirrel writes
// itself: on a local disk, or on an SFTP server (without crypt).
const config::Destination& require_native_mirror(const config::Config& cfg, const std::string& name);

// The destination's config when sync can write it: a native mirror, or a
// content-addressed destination on a local disk or an SFTP server.
const config::Destination& require_push_target(const config::Config& cfg, const std::string& name);
dest::Layout layout_of(const config::Destination& d);

// The SFTP connection settings of an sftp destination.
dest::SftpOptions sftp_options_of(const config::Destination& d);

// Opens a native mirror's root: `factory` when given (tests), else the
// local directory or the SFTP server. A server that cannot be used (refused
// host key or login, unreachable, root missing) throws Error(refused) with
// the transport's one line. create_root: sync --init on an SFTP server.
// Paths a push keeps in flight: `concurrency`, else 4 on a disk, 8 over SFTP.
std::size_t default_in_flight(const config::Destination& d);

std::unique_ptr<dest::Transport> open_mirror_transport(const config::Destination& d, const TransportFactory& factory,
                                                       bool create_root = false);

// Why <volume>/.squirrel-volume at the destination does not vouch for the
// volume (absent, unreadable, not a marker, another volume's); nullopt when
// it does. Reads through the transport; writes nothing.
std::optional<std::string> marker_problem(dest::Transport& t, const std::string& volume);

// The highest run id named under <volume>/ at a mirror (receipts and
// snapshots in .squirrel-index/, .squirrel-history/run-N, staging). A
// database that does not know the mirror's runs (recovered, or new on a
// fresh machine) numbers its runs above it, so no name a lost run wrote
// there is used again.
// A content layout's segments (<volume>/index/run-N) count too.
std::int64_t highest_run_named(dest::Transport& t, const std::string& volume, bool content_layout = false);

SyncReport run_mirror_sync(const config::Config& cfg, store::Store& st, const std::string& volume,
                           const std::string& destination, const SyncOptions& opts, const SyncListener& listener = {});

}  // namespace sq::engine::sync
