#pragma once
// Internal state of one mirror push, shared by its phases.
#include <memory>
#include <map>
#include <optional>
#include <string>

#include "engine/dest/transport.hpp"
#include "engine/sync/mirror.hpp"
#include "engine/sync/packed/pack.hpp"
#include "engine/sync/plan.hpp"
#include "store/artifacts.hpp"
#include "engine/volume.hpp"

namespace sq::engine::sync {

inline constexpr const char* kStaging = ".squirrel-staging";
inline constexpr const char* kHistory = ".squirrel-history";
inline constexpr const char* kIndexDir = ".squirrel-index";

struct Push {
  Push(const config::Config& c, store::Store& s, const SyncOptions& o, const SyncListener& l, SyncReport& r,
       std::string dest_root)
      : cfg(c), st(s), opts(o), listener(l), report(r), root(std::move(dest_root)) {}
  const config::Config& cfg;
  store::Store& st;
  const SyncOptions& opts;
  std::size_t in_flight = 4;  // opts.in_flight, or the destination's concurrency
  const SyncListener& listener;
  SyncReport& report;
  ResolvedVolume vol;
  std::string root;                          // destination root directory
  std::unique_ptr<dest::Transport> raw;      // unguarded; only wrapped copies are used for moves
  std::unique_ptr<dest::Transport> t;        // guarded by this push's run
  dest::Layout layout = dest::Layout::mirror;
  std::int64_t run_id = 0;
  std::int64_t files_done = 0, bytes_done = 0, files_total = 0, bytes_total = 0;
  bool all_read_back = true;
  std::string volatile_fs;                   // set when the copies land on a memory filesystem
  std::map<std::string, std::int64_t> adoptable;  // dry run: path -> content a real push would adopt if read back
  std::vector<PlannedWrite> small_writes;          // packed: the contents under the threshold, bound for packs

  store::Db& db() { return st.db(); }
  std::int64_t volume_id() const { return vol.row->id; }
  const std::string& name() const { return report.volume; }
  const std::string& dest() const { return report.destination; }
  std::string in_volume(const std::string& rel) const { return name() + "/" + rel; }
  std::string staging_dir(std::int64_t run) const;
  std::string staging_for(const std::string& path, std::int64_t run) const;
  std::string history_for(const std::string& path, std::int64_t run) const;
  // A run's landing evidence: a mirror's receipt, a content layout's segment.
  std::string receipt(std::int64_t run) const;
  bool content_layout() const { return layout != dest::Layout::mirror; }
  void warn(const std::string& path, const std::string& msg);
  void file_error(const std::string& path, const std::string& msg);
  void progress(const std::string& path);
};

// Phases.
void check_destination_marker(Push& p);                 // throws Error(refused)
void reconcile(Push& p);                                // settles what earlier pushes left in flight
std::int64_t watermark(Push& p);                        // throws Error(refused) per the watermark rule
// Until a first push succeeds: adopts each unrecorded copy a receipt
// vouches for and the index holds, once read back (a dry run only counts
// them). `required` (the ledger holds nothing yet): throws Error(refused)
// when there is none. A retry after an interrupted adoption goes on where
// it stopped instead of treating the rest as foreign. Returns the count.
std::int64_t adopt_vouched_copies(Push& p, bool required);
bool destination_folds_case(Push& p);                  // the fold probe
void refuse_fold_collisions(Push& p, Plan& plan);       // drops colliding paths, counting them failed
void execute_plan(Push& p, const Plan& plan);           // stage, flush, read back, displace, commit
// Writes the run's landing evidence: a mirror's <V>/.squirrel-index/run-<id>,
// a content layout's <V>/index/run-<id>, preceded in a packed layout by the
// placement map packs/map-<id> (`pack_map`).
void seal_receipt(Push& p, std::int64_t since_run, const std::string* pack_map = nullptr);
void ride_along_snapshot(Push& p);                      // never throws; warns
void remove_own_staging(Push& p);                       // after the finish; never throws; warns

// The content layouts (content/objects.cpp).
inline constexpr const char* kObjectsDir = "objects";
inline constexpr const char* kSegmentDir = "index";
std::string object_name(const Digest& hash);            // objects/<64 hex>
std::string pack_name(const Digest& key);               // packs/<64 hex>
// The volume's present contents, one source each: what the push uploads
// (every one the destination does not hold by the records), and the
// delta's contents it holds already by the records.
struct ObjectPlan {
  Plan uploads;
  std::vector<PlannedWrite> recorded;
};
ObjectPlan plan_objects(Push& p, std::int64_t since_run);
// Looks at the recorded objects of the plan (a stat each, in batches): one
// that is gone or has another size fails that content, since records are
// claims and a wiped destination must not be sealed over. Then uploads the
// rest as objects, each confirmed and then recorded; a failed or drifted
// content is counted in the report and leaves no row.
void push_objects(Push& p, const ObjectPlan& plan);
// The packed layout (packed/push_packs.cpp): contents under the threshold
// bundled into packs, landed in order; rows only once the map and the
// segment are there too.
struct LandedPack {
  packed::BuiltPack pack;
  std::optional<store::Measured> measured;  // of the pack's bytes, when measured
  std::map<Digest, std::int64_t> contents;  // member hash -> content id
};
std::vector<LandedPack> push_packs(Push& p, const std::vector<const PlannedWrite*>& small);
std::string render_pack_map(const std::vector<LandedPack>& packs);
void record_packs(Push& p, const std::vector<LandedPack>& packs);
// fingerprint-verified when every present content of the volume is an
// object (or pack member) at the destination with a verified checksum.
bool all_contents_fingerprinted(Push& p);

}  // namespace sq::engine::sync
