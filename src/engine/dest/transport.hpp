#pragma once
// The transport contract every destination writer goes through (see
// spec sync-offload-restore.md §6). Names are '/'-separated, relative to the
// destination root, and must be clean (no empty, "." or ".." component, not
// absolute, no trailing slash, no NUL). No call ever follows a symlink: a
// symlink or non-directory anywhere in a name's parent chain fails the call.
// Layouts never hold a raw transport: they get a GuardedTransport, and the
// one guard function decides every rename and removal.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
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
};

struct ReadBack {
  std::int64_t bytes = 0;
  Digest hash{};
  // True when the bytes came from the storage medium: a direct read past the
  // page cache, or a memory filesystem whose pages are the medium.
  bool from_medium = false;
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
};

// Passes every call to another transport, so a wrapper overrides only the
// calls it changes. It borrows the inner transport, or keeps it alive when
// given ownership (a unique_ptr converts).
class ForwardingTransport : public Transport {
 public:
  explicit ForwardingTransport(Transport& inner) : inner_(inner) {}
  explicit ForwardingTransport(std::shared_ptr<Transport> inner) : kept_(std::move(inner)), inner_(*kept_) {}
  Stat stat(const std::string& name) override { return inner_.stat(name); }
  std::vector<Entry> list(const std::string& dir) override { return inner_.list(dir); }
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override {
    return inner_.put(name, read, mtime_ns);
  }
  std::unique_ptr<Reader> get(const std::string& name) override { return inner_.get(name); }
  ReadBack read_back(const std::string& name) override { return inner_.read_back(name); }
  void rename(const std::string& from, const std::string& to) override { inner_.rename(from, to); }
  void remove(const std::string& name) override { inner_.remove(name); }
  void mkdirs(const std::string& dir) override { inner_.mkdirs(dir); }
  void flush() override { inner_.flush(); }

 private:
  std::shared_ptr<Transport> kept_;  // declared first: inner_ may refer to it
  Transport& inner_;
};

// A local directory as a destination root. The root must exist and be a
// directory; it is opened once and every name is resolved beneath it.
// Safe to call from several threads at once.
std::unique_ptr<Transport> open_local_transport(const std::string& root);

bool is_clean_name(const std::string& name);

// ---- the one name guard ----------------------------------------------------

// What a guard knows about runs when it judges a move.
struct GuardContext {
  std::int64_t run_id = 0;  // 0: no run holds this guard (dry runs, read-only use, bootstrap)
  bool bootstrap = false;   // `--init`: may move the staged marker into place
  // True when `id` names a run that has finished (any terminal status).
  std::function<bool(std::int64_t id)> run_finished;
};

// THE guard: the only code that decides whether bytes at a destination may
// be moved or removed. Returns an empty string when allowed, else why not.
//  rename V/.squirrel-staging/run-<this>/<key>  -> V/<live path> | V/.squirrel-index/run-<this>
//                                                | V/.squirrel-index/index-<...>.db
//  rename V/<live path> -> V/.squirrel-history/run-<this>/<same live path>
//  rename V/.squirrel-staging/volume-marker -> V/.squirrel-volume      (bootstrap only)
//  remove V/.squirrel-staging/run-<other finished run>[/<64-hex key>]
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
  // For Kind::stall: called instead of the operation at the faulting call;
  // the test decides what a stall means (e.g. throw after recording). If it
  // returns, the call fails with TransportError(ETIMEDOUT) having done nothing.
  std::function<void()> on_stall;
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
// later calls run normally. Calls from several threads are serialized, so
// every call is counted once and the faulting one is whichever comes N-th.
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
