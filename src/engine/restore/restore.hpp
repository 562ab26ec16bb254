#pragma once
// Restore from a local mirror, present AND offloaded files. Every file is
// streamed from the destination while hashed into a temporary file beside
// its target; a batch of them is flushed, then each is renamed into place
// without replacing anything;
// bytes that fail the hash never reach the path. With --in-place a file in
// the way moves to .squirrel-restore-history/run-<id>/ first.
// Without an index for the volume (a fresh machine) the mirror is walked
// instead and each file is checked against the receipts the pushes left.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/sync/mirror.hpp"
#include "store/runs.hpp"
#include "store/store.hpp"

namespace sq::engine {

struct RestoreOptions {
  // Empty: every present and offloaded file. A file the index calls missing
  // (deleted by mistake) is restored when a selector names it or its folder,
  // or with `missing`. A selector that matches no file is an error.
  std::vector<std::string> selectors;
  bool missing = false;                // only (and every) file the index calls missing
  // --at: every file as it was when this run began (each path's version
  // that the index recorded then, from its live or history copy), instead
  // of the current files. Files deleted since come back too.
  std::optional<std::int64_t> at_run;
  std::string from;                    // destination; empty: the volume's first local mirror
  std::string to;                      // empty: the volume root
  bool dry_run = false;
  bool in_place = false;
  std::size_t files_in_flight = 0;        // 0: automatic (a few, to overlap reading, hashing and flushing)
  sync::TransportFactory transport;       // default: the local transport; tests inject faults here
  // Makes every file written so far on the file system of the open
  // directory durable; 0 or an errno. Default: syncfs. Tests observe and
  // fail the flush here.
  std::function<int(int dir)> flush_filesystem;
};

struct RestoreEvent {
  enum class Type { progress, warning, file_error };
  Type type = Type::progress;
  std::string path, message;
  // Of the files the run set out to restore: those whose turn is over
  // (restored, already correct, left in place or failed) and the bytes the
  // index or receipt expected of them, so done reaches total in every run.
  std::int64_t files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;
};
using RestoreListener = std::function<void(const RestoreEvent&)>;

struct RestoreReport {
  std::string volume, from, to;
  std::int64_t run_id = 0;
  store::RunStatus status = store::RunStatus::success;
  bool dry_run = false;
  std::int64_t selected = 0, restored = 0, bytes = 0, already_correct = 0, displaced = 0;
  std::int64_t refused_existing = 0, no_copy = 0, failed = 0, revived = 0;
  std::int64_t settled_offloaded = 0;  // rows a killed offload had unlinked, settled before restoring
  std::int64_t mismatched = 0;  // copies whose bytes did not match their record; never written
  std::int64_t other_copy = 0;  // files restored from another copy after their own copy failed
  // Temp files that killed restore runs left beside targets, removed first.
  std::int64_t leftover_temps_removed = 0;
  std::vector<std::int64_t> leftover_runs;
  // Restore without an index: files were checked against receipts (a
  // mirror's) or segments (a content-addressed or packed destination's).
  bool without_index = false;
  bool from_segments = false;
  std::int64_t unnamed = 0;                 // restored although no receipt vouches for them
  std::int64_t companions_skipped = 0, others_skipped = 0;
  std::int64_t receipts_read = 0, receipts_unreadable = 0;
};

// --at: the run a text names — a run id, or an RFC 3339 time (the last run
// that began by then). Throws Error(usage) naming the fix otherwise.
std::int64_t resolve_at_run(store::Db& db, const std::string& text);

RestoreReport run_restore(const config::Config& cfg, store::Store& st, const std::string& volume,
                          const RestoreOptions& opts, const RestoreListener& listener = {});

}  // namespace sq::engine
