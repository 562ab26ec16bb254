#pragma once
// The index engine: walks a volume without following symlinks, hashes
// regular files with a worker pool, classifies them against the index and
// records them in batched transactions. Also serves `audit`, which walks
// and compares without recording.
#include <cstdint>
#include <functional>
#include <string>

#include "config/config.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine {

enum class IndexMode {
  index,        // hash (or shallow-compare) and record
  audit,        // compare size+mtime against the index, record nothing but the run
  audit_deep,   // re-hash every file and compare, record nothing but the run
};

struct IndexOptions {
  IndexMode mode = IndexMode::index;
  bool shallow = false;   // index: trust size+mtime of present rows
  bool dry_run = false;   // index: classify only; nothing is written anywhere
  int workers = 0;        // 0 = sized for the machine
  std::size_t batch_size = 8192;  // entries per hand-off to the writer (which commits by time)
};

struct IndexEvent {
  enum class Type { progress, file_error, warning, finding };
  Type type = Type::progress;
  std::string path;     // volume-relative, raw bytes
  std::string message;
  std::int64_t files_done = 0, bytes_done = 0;
};
using IndexListener = std::function<void(const IndexEvent&)>;

inline constexpr const char* kReservedNamesTransition = "reserved-names";

struct IndexReport {
  std::string volume;
  std::int64_t run_id = 0;  // 0 for a dry run
  store::RunStatus status = store::RunStatus::success;
  std::int64_t added = 0, modified = 0, unchanged = 0, missing = 0, errors = 0;
  std::int64_t skipped_special = 0;   // symlinks, devices, FIFOs, sockets
  // Entries under names squirrel reserves (core/reserved.hpp): reported,
  // never recorded, never copied. An index run stores the count in a
  // runs_audit row (kReservedNamesTransition) for status.
  std::int64_t reserved = 0;
  std::int64_t bytes_hashed = 0;
  std::int64_t settled_offloaded = 0;  // files a killed offload had unlinked, recorded as offloaded first
  bool first_index = false;
  bool dry_run = false;
  std::int64_t findings() const { return added + modified + missing + errors; }
};

// Throws Error for preflight refusals (after recording a refused run when
// the volume is known) and for a gate conflict (Error(conflict), the message
// names the blocking run).
IndexReport run_index(const config::Config& cfg, store::Store& st, const std::string& volume, const IndexOptions& opts,
                      const IndexListener& listener = {});

int default_workers();

}  // namespace sq::engine
