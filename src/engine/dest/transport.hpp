#pragma once
// The transport contract every destination writer goes through (see
// spec sync-offload-restore.md §6). Names are '/'-separated, relative to the
// destination root, and must be clean (no empty, "." or ".." component, not
// absolute, no trailing slash, no NUL). No call ever follows a symlink: a
// symlink or non-directory anywhere in a name's parent chain fails the call.
// Layouts never hold a raw transport: they get a GuardedTransport, and the
// one guard function decides every rename and removal.
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace sq::dest {

// A failed transport call. `err` is an errno value (EEXIST for exclusive
// create / no-replace rename conflicts, ENOENT for absence, ELOOP for a
// symlink in the way, ENOTDIR for a file where a directory is needed,
// EPERM for a guard refusal, EIO/ENOSPC/EACCES as the OS reports).
class TransportError : public Error {
 public:
  TransportError(int err, const std::string& message) : Error(ErrorKind::io, message), err_(err) {}
  int err() const noexcept { return err_; }

 private:
  int err_;
};

enum class EntryType { none, file, directory, symlink, other };

struct Stat {
  EntryType type = EntryType::none;  // none: the name does not exist
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
};

struct Entry {
  std::string name;  // a single component
  Stat stat;
};

struct PutResult {
  std::int64_t bytes = 0;
  Digest hash{};  // BLAKE3 of exactly the bytes written
  // The mtime the destination stored (a server may keep whole seconds);
  // records hold this, so a later stat compares equal.
  std::int64_t mtime_ns = 0;
  // When the destination proves stored bytes with another algorithm (a
  // server's sha256sum), that digest of exactly the bytes sent; else empty.
  std::string sent_checksum;
};

// What a transport measured of stored bytes. Local: this machine read them
// (algo "blake3"). A remote server: its own hash command hashed them there
// (by_server; algo as the server ran it). algo empty: the transport cannot
// look at stored bytes without sending them back, so nothing was measured.
struct ReadBack {
  std::int64_t bytes = 0;
  Digest hash{};  // BLAKE3 of the stored bytes; meaningful when algo == "blake3"
  // True when the bytes came from the storage medium: a direct read past the
  // page cache, or a memory filesystem whose pages are the medium.
  bool from_medium = false;
  bool by_server = false;
  std::string algo = "blake3";
  std::string checksum;  // lowercase hex under algo
  bool measured() const { return !algo.empty(); }
  // Do the stored bytes hold what was sent (its BLAKE3, or the sent
  // checksum under a server's algorithm)?
  bool matches(const Digest& sent_blake3, const std::string& sent_checksum) const {
    if (algo == "blake3") return hash == sent_blake3;
    return measured() && !sent_checksum.empty() && checksum == sent_checksum;
  }
};

// Fills buf with up to len bytes; returns 0 at end of input; throws on error.
using ReadFn = std::function<std::size_t(char* buf, std::size_t len)>;

class Reader {
 public:
  virtual ~Reader() = default;
  virtual std::size_t read(char* buf, std::size_t len) = 0;  // 0 at end
  virtual Stat stat() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Lstat semantics: a symlink is reported as a symlink. Absence is
  // EntryType::none, not an error.
  virtual Stat stat(const std::string& name) = 0;
  // stat() of several names, in order. A transport that answers many
  // names of one directory with one request (a server's listing) does; a
  // name that fails fails the whole call.
  virtual std::vector<Stat> stat_many(const std::vector<std::string>& names) {
    std::vector<Stat> out;
    for (const auto& n : names) out.push_back(stat(n));
    return out;
  }
  // Entries of a directory (not recursive), sorted by name bytewise. The
  // empty name lists the destination root.
  virtual std::vector<Entry> list(const std::string& dir) = 0;
  // Exclusive create of a regular file (EEXIST if the name exists),
  // creating missing parent directories; streams `read` until it returns
  // 0, sets the mtime, and returns the size and BLAKE3 of what was written.
  // The bytes are durable only after the next flush().
  virtual PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) = 0;
  // Opens a regular file for reading.
  virtual std::unique_ptr<Reader> get(const std::string& name) = 0;
  // BLAKE3 of the file's bytes, read past the page cache where the OS
  // allows (O_DIRECT, else dropping clean pages first).
  virtual ReadBack read_back(const std::string& name) = 0;
  // read_back() of several names, in order. A transport that proves bytes
  // with one request for many (a server's hash command) does it at once;
  // a name that fails fails the whole call.
  virtual std::vector<ReadBack> read_back_many(const std::vector<std::string>& names) {
    std::vector<ReadBack> out;
    for (const auto& n : names) out.push_back(read_back(n));
    return out;
  }
  // Moves a file or directory, creating the target's parents; never
  // replaces an existing target (EEXIST).
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or an empty directory.
  virtual void remove(const std::string& name) = 0;
  // Creates a directory and any missing parents (no error if it exists).
  virtual void mkdirs(const std::string& dir) = 0;
  // Durability barrier: everything every earlier call did is on stable
  // storage when this returns (files and directory entries).
  virtual void flush() = 0;
  // Why flush() cannot make written bytes durable here (a server without
  // fsync@openssh.com), or empty when it can. Evidence from such a
  // destination is recorded as the weaker method.
  virtual std::string durability_gap() { return {}; }
  // True when read_back() is measured by the destination's own machine (a
  // server's hash command) rather than read here.
  virtual bool hashes_on_server() { return false; }
};

// How much a caller asks of one read_back_many: a server's hash command
// is given many copies at once (starting it costs more than hashing a
// small file), but few enough bytes that one call stays short.
inline constexpr std::size_t kReadBackGroupFiles = 4096;
inline constexpr std::int64_t kReadBackGroupBytes = 64LL << 20;

// Reads `name` back over the transport (get) and BLAKE3s it here: the
// proof for a destination that cannot hash its own bytes.
ReadBack download_blake3(Transport& t, const std::string& name);
// read_back() when it measures BLAKE3, else download_blake3().
ReadBack read_back_blake3(Transport& t, const std::string& name);

// Passes every call to another transport, so a wrapper overrides only the
// calls it changes. It borrows the inner transport, or keeps it alive when
// given ownership (a unique_ptr converts).
class ForwardingTransport : public Transport {
 public:
  explicit ForwardingTransport(Transport& inner) : inner_(inner) {}
  explicit ForwardingTransport(std::shared_ptr<Transport> inner) : kept_(std::move(inner)), inner_(*kept_) {}
  Stat stat(const std::string& name) override { return inner_.stat(name); }
  std::vector<Stat> stat_many(const std::vector<std::string>& names) override { return inner_.stat_many(names); }
  std::vector<Entry> list(const std::string& dir) override { return inner_.list(dir); }
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override {
    return inner_.put(name, read, mtime_ns);
  }
  std::unique_ptr<Reader> get(const std::string& name) override { return inner_.get(name); }
  ReadBack read_back(const std::string& name) override { return inner_.read_back(name); }
  std::vector<ReadBack> read_back_many(const std::vector<std::string>& names) override {
    return inner_.read_back_many(names);
  }
  void rename(const std::string& from, const std::string& to) override { inner_.rename(from, to); }
  void remove(const std::string& name) override { inner_.remove(name); }
  void mkdirs(const std::string& dir) override { inner_.mkdirs(dir); }
  void flush() override { inner_.flush(); }
  std::string durability_gap() override { return inner_.durability_gap(); }
  bool hashes_on_server() override { return inner_.hashes_on_server(); }

 private:
  std::shared_ptr<Transport> kept_;  // declared first: inner_ may refer to it
  Transport& inner_;
};

// The durability calls of the local transport, each replaceable so a test
// can see what a flush syncs and make a sync fail. An empty function is the
// real system call. Each returns 0 or -1 with errno set, like the call.
struct LocalSyncCalls {
  std::function<int(int fd)> fsync;
  std::function<int(int fd)> syncfs;
};

// A local directory as a destination root. The root must exist and be a
// directory; it is opened once and every name is resolved beneath it.
// Safe to call from several threads at once.
std::unique_ptr<Transport> open_local_transport(const std::string& root, LocalSyncCalls calls = {});

// ---- stall detection (spec sync-offload-restore.md §6.5) ---------------------

// A call given up because it made no progress for the stall timeout. It
// stops the push: a destination that hangs one call hangs the next one too.
class StallError : public TransportError {
 public:
  explicit StallError(const std::string& message) : TransportError(ETIMEDOUT, message) {}
};

struct StallOptions {
  // A call that makes no progress for this long is given up.
  std::int64_t timeout_ns = 10LL * 60 * 1000000000;
  // Given-up calls are counted under this name until they return.
  std::string destination;
  // Tests: the clock the timeout is measured on (nanoseconds); a given
  // clock is looked at every millisecond. Empty: the monotonic clock.
  std::function<std::int64_t()> clock;
};

// Runs every call of `inner` on a worker thread and waits for it while it
// makes progress: a put progresses with every chunk it reads and gets an
// extra second per MiB after its last one, a read of a got file with every
// read, a flush gets a second per MiB put since the last flush, and a long
// call of the inner transport reports progress with note_progress(). A call
// without progress for the timeout throws StallError, and so does every
// later call (the destination is wedged); the given-up call keeps running
// on its own thread and is counted until it returns. A got file is read
// through a private buffer, so a late read never touches the caller's.
// Calls from HelperThreads of this transport run inline (see below).
std::unique_ptr<Transport> stall_guarded(std::unique_ptr<Transport> inner, StallOptions opts);

// Calls to `destination` that were given up and have not returned yet. A
// push refuses to start while there are any: a call blocked in the kernel
// may still complete a move.
std::int64_t given_up_calls(const std::string& destination);

// Threads a caller starts to make calls to a stall-guarded transport `t`
// and then waits for. Their calls run inline (no hand-off to a worker,
// which costs two context switches a call), and wait() leaves a helper
// behind when its call is given up as stalled: that thread parks for good
// once the call returns and never touches the caller's state again. With
// a transport that is not stall-guarded they are plain threads.
class HelperThreads {
 public:
  explicit HelperThreads(Transport& t);
  ~HelperThreads();  // waits, without throwing
  HelperThreads(const HelperThreads&) = delete;
  HelperThreads& operator=(const HelperThreads&) = delete;
  void spawn(std::function<void()> body);
  // Waits for every helper; throws StallError when one was left behind in
  // a stalled call, else rethrows what a body let escape.
  void wait();

 private:
  struct State;
  std::shared_ptr<State> s_;
  std::vector<std::thread> threads_;
};

// Called by a transport during a long call (every chunk hashed or written,
// every file synced): the stall guard running the call counts it as
// progress. Does nothing outside a guarded call.
void note_progress();
// True once the stall guard gave up the call this thread runs: a call of
// the inner transport that waits on a silent peer stops instead of waiting
// for ever on a thread nobody waits for. False outside a guarded call.
bool call_given_up();

bool is_clean_name(const std::string& name);
// The run id N of a name "<prefix>N" whose N is a canonical positive
// decimal ("run-7"; not "run-07", "run-0", "run-+7" or "run-7x"): the one
// reading of the run-named folders and files squirrel writes.
std::optional<std::int64_t> run_id_in(std::string_view name, std::string_view prefix = "run-");

// ---- the one name guard ----------------------------------------------------

// How a destination arranges what it stores (the config's `layout`).
// The guard needs it: `V/index/run-<id>` is a user's folder in a mirror
// but a manifest segment in the content layouts, and only the content
// layouts hold objects/ and packs/ beside the volumes.
enum class Layout { mirror, content_addressed, packed };

// What a guard knows about runs when it judges a move.
struct GuardContext {
  std::int64_t run_id = 0;  // 0: no run holds this guard (dry runs, read-only use, bootstrap)
  bool bootstrap = false;   // `--init`: may move the staged marker into place
  // True when `id` names a run that has finished (any terminal status).
  std::function<bool(std::int64_t id)> run_finished;
  Layout layout = Layout::mirror;
};

// THE guard: the only code that decides whether bytes at a destination may
// be moved or removed. Returns an empty string when allowed, else why not.
// A mirror:
//  rename V/.squirrel-staging/run-<this>/<key>  -> V/<live path> | V/.squirrel-index/run-<this>
//                                                | V/.squirrel-index/index-<...>.db
//  rename V/<live path> -> V/.squirrel-history/run-<this>/<same live path>
// The content layouts (nothing there is ever replaced, moved or deleted but
// staging; the move onto an artifact name never replaces, see rename()):
//  rename V/.squirrel-staging/run-<this>/<key>  -> objects/<64-hex> | V/index/run-<this>
//                                                | V/.squirrel-index/index-<...>.db
//  packed also: -> packs/<64-hex> | packs/map-<this>
// Every layout:
//  rename V/.squirrel-staging/volume-marker -> V/.squirrel-volume      (bootstrap only)
//  remove V/.squirrel-staging/run-<other finished run>[/<64-hex key>]
//  remove V/.squirrel-staging/run-<this run>  (once this run has finished; only an empty directory can go)
//  remove V/.squirrel-staging/volume-marker                          (bootstrap only)
//  remove V/.squirrel-staging/fold-probe-<anything>                  (any run)
//  remove V/.squirrel-index/index-<...>.db                           (any run; rotation)
// where V is a valid volume name, <live path> is a clean path whose first
// component is not reserved (.squirrel-*) and is not the marker, and run
// ids are canonical positive decimals. Everything else is refused.
std::string guard_rename(const GuardContext& g, const std::string& from, const std::string& to);
std::string guard_remove(const GuardContext& g, const std::string& name);

// A transport whose rename and remove go through the guard; a refusal
// throws TransportError(EPERM) and touches nothing.
std::unique_ptr<Transport> guarded(std::unique_ptr<Transport> inner, GuardContext g);

// ---- fault injection (tests) -------------------------------------------------

struct FaultPlan {
  enum class Kind { none, crash, power_cut, error, stall };
  Kind kind = Kind::none;
  int at_call = 0;   // 1-based index of the call that faults
  int err = 0;       // for Kind::error: EIO, ENOSPC, EACCES ...
  // For Kind::stall: called before the operation at the faulting call; the
  // test decides how long the call hangs (e.g. until the push gave it up).
  // If it returns, the call fails with TransportError(ETIMEDOUT) having done
  // nothing — or, with stall_completes, does its work late, the way a call
  // blocked in the kernel finally completes.
  std::function<void()> on_stall;
  bool stall_completes = false;
};

// Thrown when a simulated crash or power cut happens. After it, every
// further call on the faulty transport throws it again (the process is "dead").
class SimulatedCrash : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Wraps a transport and counts calls (every method counts as one call).
// crash: the faulting call does not happen; power_cut: additionally every
// put, rename, mkdirs and remove since the last completed flush is undone
// (a put's file removed, a rename reversed, created directories removed,
// removed files are not restored) before SimulatedCrash is thrown.
// error: the faulting call throws TransportError(err) having done nothing;
// later calls run normally. stall: the faulting call hangs in on_stall, then
// fails having done nothing or (stall_completes) does its work late.
// Calls from several threads are serialized, so every call is counted once
// and the faulting one is whichever comes N-th.
class FaultTransport : public Transport {
 public:
  FaultTransport(std::unique_ptr<Transport> inner, FaultPlan plan);
  int calls() const { return calls_; }
  bool crashed() const { return crashed_; }
  Stat stat(const std::string& name) override;
  std::vector<Entry> list(const std::string& dir) override;
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override;
  std::unique_ptr<Reader> get(const std::string& name) override;
  ReadBack read_back(const std::string& name) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove(const std::string& name) override;
  void mkdirs(const std::string& dir) override;
  void flush() override;
  std::string durability_gap() override { return inner_->durability_gap(); }
  bool hashes_on_server() override { return inner_->hashes_on_server(); }

 private:
  struct Undo {
    enum class Op { put, rename, mkdir } op;
    std::string a, b;
  };
  void enter();  // counts the call; faults if it is the planned one
  void power_cut();
  // Journals the directories on the way to `name` (and `name` itself when
  // include_self) that do not exist yet, so a power cut can remove them.
  void journal_new_dirs(const std::string& name, bool include_self);
  std::unique_ptr<Transport> inner_;
  FaultPlan plan_;
  int calls_ = 0;
  bool crashed_ = false;
  std::vector<Undo> unflushed_;
  std::mutex mu_;
};

}  // namespace sq::dest
