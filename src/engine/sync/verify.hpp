#pragma once
// `squirrel verify`: re-checks what a local mirror holds against the
// ledger. Every volume marker is checked first (an unmounted disk is not
// "everything lost"); every live and displaced copy is stat'ed; the least
// recently verified copies are re-hashed past the page cache until about a
// tenth of the stored bytes were read. A clean pass refreshes the evidence
// it covered; a finding marks the copy lost, demotes the evidence so
// offload stops trusting it, and latches a destination alarm.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/progress.hpp"
#include "engine/sync/mirror.hpp"
#include "store/store.hpp"
#include "store/volumes.hpp"

namespace sq::engine::sync {

struct VerifyOptions {
  bool full = false;       // re-hash every copy
  double share = 0.10;     // otherwise about this share of the stored bytes
  // --download: read each re-hashed copy back over the wire and BLAKE3 it
  // here, for a server that cannot hash (an sftp-only account).
  bool download = false;
  TransportFactory transport;
  dest::StallOptions stall;  // its destination is this verify's
};

struct VerifyFinding {
  std::string volume, path, kind, detail;  // kind: missing | changed
};

struct VerifyReport {
  std::string destination;
  std::vector<std::int64_t> run_ids;
  std::int64_t checked = 0, rehashed = 0, bytes_rehashed = 0, bytes_stored = 0;
  // Copies that could not be hashed this pass (a server without a hash
  // command, or another algorithm than the recorded one): neither a
  // confirmation nor a finding.
  std::int64_t unchecked = 0;
  std::string method;  // what a clean pass recorded ("" when it refreshed nothing)
  std::vector<VerifyFinding> findings;
  bool alarm_raised = false, alarm_cleared = false;
  std::vector<std::string> refreshed_volumes;
  std::string volatile_fs;  // the memory filesystem the copies are on: refreshed as presence+size only
  // A content-addressed destination: objects there that no record names
  // (an interrupted push's, or another database's). Harmless; not findings.
  std::int64_t orphans = 0;
};

// `listener` hears two phases: "checking" (every copy stat'ed; no bytes)
// and "re-hashing" (the copies this pass reads, with their bytes).
VerifyReport run_verify(const config::Config& cfg, store::Store& st, const std::string& destination,
                        const VerifyOptions& opts, const ProgressListener& listener = {});

// The pass over a content-addressed destination (content/verify_objects.cpp),
// run before anything is written: what it found, and what the caller
// records once the pass is over.
struct ObjectFindings {
  struct Stamp {
    std::int64_t content_id = 0;  // 0: the pack `pack`
    std::string algo, checksum;
    std::int64_t at_ns = 0;
    Digest pack{};
  };
  std::vector<VerifyFinding> findings;     // volume "" for an object, else a volume's segment
  std::vector<std::int64_t> lost_contents; // objects found gone or damaged: their records go
  std::vector<Digest> lost_packs;          // packs found gone or damaged: the destination's rows go
  std::vector<Stamp> stamps;               // objects confirmed this pass
  std::int64_t orphans = 0;
};
ObjectFindings verify_objects(dest::Transport& t, store::Db& db, const std::string& dest,
                              const std::vector<store::VolumeRow>& vols, const VerifyOptions& o, VerifyReport& rep,
                              const ProgressListener& listener);

// A finding about copies at `dest` (verify's, or offload's look before an
// unlink): marks the ledger rows lost, demotes the volume's locally verified
// evidence to presence+size and latches the destination alarm, inside the
// caller's write transaction. Returns true when this raised the alarm.
bool record_lost_copies_in_tx(store::Db& db, std::int64_t volume_id, const std::string& dest,
                              const std::vector<std::int64_t>& ledger_ids, const std::string& kind,
                              const std::string& detail, std::int64_t run_id);

// `verify ack`: a person acknowledges the alarm; audited with the operator.
bool acknowledge_alarm(store::Db& db, const std::string& destination, const std::string& operator_name);

}  // namespace sq::engine::sync
