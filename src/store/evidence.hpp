#pragma once
// Durability evidence: per (volume, destination, origin node) the highest
// origin run whose content is durable there, the method that was actually
// measured, and when it was last verified. One monotonic upsert is the only
// write path into the vector; every applied write is logged.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/db.hpp"

namespace sq::store {

enum class VerifyMethod {
  size_mtime,            // size and mtime compared only
  presence_size,         // the copy exists at the expected size
  checksum,              // a provider checksum compared (rclone): not our BLAKE3
  fingerprint_verified,  // every copy's BLAKE3 read back from the destination
  server_hash,           // the destination's server hashed every stored copy (its hash command) and it matched
  download_blake3,       // every copy was downloaded and its BLAKE3 computed here
  peer_blake3,           // a peer re-hashed every delivered file
  kopia_verify,          // kopia snapshot verify read back a share of the bytes
  restic_check,          // restic check --read-data-subset read back a share of the bytes
};

std::string_view to_string(VerifyMethod m);
std::optional<VerifyMethod> parse_verify_method(std::string_view s);
// The one answer to "may this method gate an offload?".
bool is_content_verified(std::optional<VerifyMethod> m);

struct VectorWrite {
  std::int64_t volume_id = 0;
  std::string destination;
  std::int64_t origin_node_id = 0;
  std::int64_t origin_run_id = 0;
  std::optional<VerifyMethod> method;        // what this write measured; empty: no method
  bool verified = false;                     // this write carries a real verification
  std::optional<std::int64_t> source_node;   // empty: verified locally; else the asserting peer
  std::optional<std::int64_t> verified_at;   // relayed instant for pulled evidence (capped at now)
  bool allow_rewind = false;
  // A push verifies the copies it wrote, not the ones earlier evidence
  // covers: the component keeps the older of its stamp and this write's
  // (an unknown stamp stays unknown), so only a verify pass makes old
  // evidence fresh again.
  bool keep_older_stamp = false;
};

enum class UpsertOutcome { inserted, advanced, reconfirmed, rewound, refused_rewind };

// THE write path into the vector. Must run inside a write transaction.
// - never lowers origin_run_id unless allow_rewind (a refused rewind
//   writes nothing and returns refused_rewind);
// - every applied write appends exactly one advance-log row;
// - verified_at_ns is stamped only by a write that carries a verification;
//   an unverified strict advance clears it (the new coverage is unverified,
//   and unknown age counts as too old); an unverified equal write keeps it.
UpsertOutcome upsert_vector_in_tx(Db& db, const VectorWrite& w);

struct Component {
  std::int64_t volume_id = 0;
  std::string destination;
  std::int64_t origin_node_id = 0;
  std::string origin_node_name;
  std::int64_t origin_run_id = 0;
  std::int64_t updated_at_ns = 0;
  std::optional<VerifyMethod> method;
  std::optional<std::int64_t> source_node_id;
  std::optional<std::int64_t> verified_at_ns;
};
std::vector<Component> vector_of(Db& db, std::int64_t volume_id, const std::string& destination);
std::int64_t count_history(Db& db, std::int64_t volume_id, const std::string& destination);

// Per origin node, the highest origin run among the volume's present
// contents outside reserved subtrees. Locally introduced content counts as
// (self, earliest first_seen run of that content in the volume).
struct OriginMax {
  std::int64_t node_id = 0;
  std::int64_t run_id = 0;
};
std::vector<OriginMax> present_origin_maxima(Db& db, std::int64_t volume_id, std::int64_t self_node_id);

// Component-wise max to the snapshot (a refused rewind is skipped: the
// destination is append-only), then push freshness overwritten with the
// same components. Must run inside a write transaction.
void advance_to_snapshot_in_tx(Db& db, std::int64_t volume_id, const std::string& destination,
                               std::optional<VerifyMethod> method, bool verified,
                               const std::vector<OriginMax>& snapshot);

// SQL condition (on alias d = folders, f = files) excluding reserved subtrees.
extern const char* const kOutsideReserved;
// The same condition in C++, for scans that filter rows themselves.
bool outside_reserved(std::string_view folder_path, std::string_view name);

}  // namespace sq::store
