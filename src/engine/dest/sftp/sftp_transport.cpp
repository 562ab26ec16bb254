// The SFTP transport: every Transport call on a pooled connection. See
// sftp.hpp for the rules; the checks a server may not make itself
// (exclusive create, no-replace rename, no symlink in a parent) are made
// here with lstat before the call.
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "core/digest.hpp"
#include "core/text.hpp"
#include "engine/dest/sftp/connection.hpp"
#include "engine/dest/sftp/server_hash.hpp"

namespace sq::dest {

namespace sftp {
namespace {

// Fewer, larger writes: each sftp_write waits for its reply. OpenSSH's
// server takes messages up to 256 KiB.
constexpr std::size_t kChunk = 192 * 1024;
// Reads stay at a size every server serves whole.
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kReadsInFlight = 16;

void require_clean(const std::string& name, const char* what) {
  if (!is_clean_name(name))
    throw TransportError(EINVAL, fmt::format("{} {}: not a clean relative name", what, escape_for_display(name)));
}

[[noreturn]] void fail_on(int err, const char* what, const std::string& name) {
  const char* why = err == ELOOP     ? "a symlink is in the way (symlinks are never followed)"
                    : err == ENOTDIR ? "a parent is not a directory"
                    : err == EEXIST  ? "the name already exists (never replaced)"
                                     : std::strerror(err);
  throw TransportError(err, fmt::format("{} {}: {}", what, escape_for_display(name), why));
}

struct AttrHolder {
  sftp_attributes a = nullptr;
  ~AttrHolder() { sftp_attributes_free(a); }
};

EntryType type_of(const sftp_attributes a) {
  switch (a->type) {
    case SSH_FILEXFER_TYPE_REGULAR: return EntryType::file;
    case SSH_FILEXFER_TYPE_DIRECTORY: return EntryType::directory;
    case SSH_FILEXFER_TYPE_SYMLINK: return EntryType::symlink;
    default: return EntryType::other;
  }
}

Stat to_stat(const sftp_attributes a) {
  return {type_of(a), static_cast<std::int64_t>(a->size), static_cast<std::int64_t>(a->mtime) * 1000000000LL};
}

// SFTP v3 keeps whole, non-negative seconds.
std::int64_t stored_mtime(std::int64_t ns) {
  std::int64_t s = ns >= 0 ? ns / 1000000000LL : 0;
  return s * 1000000000LL;
}

std::vector<std::string> prefixes(const std::string& name) {
  std::vector<std::string> out;
  for (std::size_t i = name.find('/'); i != std::string::npos; i = name.find('/', i + 1)) out.push_back(name.substr(0, i));
  return out;
}

std::string parent_of(const std::string& name) {
  auto i = name.rfind('/');
  return i == std::string::npos ? "" : name.substr(0, i);
}

}  // namespace

class Pool {
 public:
  Pool(SftpOptions o) : o_(std::move(o)) {}
  std::unique_ptr<Connection> take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < o_.max_sessions; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
    lock.unlock();
    try {
      return std::make_unique<Connection>(o_);
    } catch (...) {
      give_back(nullptr);
      throw;
    }
  }
  // A connection that lost its server is dropped; the next take() dials.
  void give_back(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu_);
    if (c && c->alive()) idle_.push_back(std::move(c));
    else --open_;
    cv_.notify_one();
  }
  const SftpOptions& options() const { return o_; }

 private:
  SftpOptions o_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;
};

class Lease {
 public:
  explicit Lease(Pool& p) : pool_(p), c_(p.take()) {}
  ~Lease() { pool_.give_back(std::move(c_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Connection& operator*() { return *c_; }
  Connection* operator->() { return c_.get(); }

 private:
  Pool& pool_;
  std::unique_ptr<Connection> c_;
};

class SftpTransport final : public Transport {
 public:
  SftpTransport(const SftpOptions& o, bool create_root);
  Stat stat(const std::string& name) override;
  std::vector<Stat> stat_many(const std::vector<std::string>& names) override;
  std::vector<Entry> list(const std::string& dir) override;
  PutResult put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) override;
  std::unique_ptr<Reader> get(const std::string& name) override;
  ReadBack read_back(const std::string& name) override { return read_back_many({name}).front(); }
  std::vector<ReadBack> read_back_many(const std::vector<std::string>& names) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove(const std::string& name) override;
  void mkdirs(const std::string& dir) override;
  void flush() override;
  std::string durability_gap() override;
  bool hashes_on_server() override { return !hash_algo_.empty(); }

 private:
  friend class SftpReader;
  std::string full(const std::string& name) const {
    if (root_.empty()) return name.empty() ? "." : name;
    return name.empty() ? root_ : root_ + "/" + name;
  }
  // lstat: nullopt when absent; throws for any other failure.
  std::optional<Stat> lstat(Connection& c, const std::string& name, const char* what);
  // Every parent of `name` must be a directory: false when one is missing.
  bool parents_are_dirs(Connection& c, const std::string& name, const char* what);
  void make_dirs(Connection& c, const std::string& dir, const char* what, const std::string& name);
  void forget_dirs(const std::string& name);
  // True when `name` cannot exist yet: its directory was made by this
  // transport and nothing of that name was created in it since. Marks the
  // name as created, so the next call looks.
  bool claim_fresh(const std::string& name);
  // A put, rename, mkdir or remove changed the directory holding `name`.
  void touched(const std::string& name);
  void sync_dir(Connection& c, const std::string& dir);
  Stat require_regular(Connection& c, const std::string& name, const char* what);
  // What require_regular() says of each name.
  std::vector<Stat> require_regular_many(Connection& c, const std::vector<std::string>& names, const char* what);
  Stat stat_on(Connection& c, const std::string& name);
  // What stat_on() says of each name, from one listing per folder that
  // holds several of them.
  std::vector<Stat> stat_many_on(Connection& c, const std::vector<std::string>& names);
  std::vector<Entry> list_on(Connection& c, const std::string& dir);
  std::optional<std::map<std::string, Stat>> listing(Connection& c, const std::string& dir);
  PutResult write_body(Connection& c, sftp_file f, const ReadFn& read, const std::string& name);

  sftp::Pool pool_;
  std::string root_;
  std::string hash_algo_;  // the server hash that works, "" for none
  bool fsync_ = false;
  std::mutex dirs_mu_;
  std::set<std::string> known_dirs_;  // names seen as directories by this transport
  // Directories this transport's mkdir created, and the names it has put or
  // moved into them: a directory made here held nothing before, so a name in
  // it that this transport never created is known to be absent without the
  // look-first lstat (one round trip less per file of a first sync).
  std::set<std::string> made_dirs_, made_names_;
  std::set<std::string> dirty_dirs_;  // directories whose entries changed since the last flush
};

}  // namespace sftp
}  // namespace sq::dest

namespace sq::dest {
namespace sftp {

std::optional<Stat> SftpTransport::lstat(Connection& c, const std::string& name, const char* what) {
  AttrHolder h;
  h.a = sftp_lstat(c.sftp(), full(name).c_str());
  if (h.a) return to_stat(h.a);
  if (c.last_errno() == ENOENT) return std::nullopt;
  c.fail(what, name);
}

bool SftpTransport::parents_are_dirs(Connection& c, const std::string& name, const char* what) {
  for (const auto& p : prefixes(name)) {
    {
      std::lock_guard lock(dirs_mu_);
      if (known_dirs_.count(p)) continue;
    }
    auto st = lstat(c, p, what);
    if (!st) return false;
    if (st->type == EntryType::symlink) fail_on(ELOOP, what, name);
    if (st->type != EntryType::directory) fail_on(ENOTDIR, what, name);
    std::lock_guard lock(dirs_mu_);
    known_dirs_.insert(p);
  }
  return true;
}

void SftpTransport::make_dirs(Connection& c, const std::string& dir, const char* what, const std::string& name) {
  if (dir.empty()) return;
  auto chain = prefixes(dir);
  chain.push_back(dir);
  for (const auto& p : chain) {
    {
      std::lock_guard lock(dirs_mu_);
      if (known_dirs_.count(p)) continue;
    }
    bool made = false;
    auto st = claim_fresh(p) ? std::nullopt : lstat(c, p, what);
    if (!st) {
      made = sftp_mkdir(c.sftp(), full(p).c_str(), 0755) == 0;
      // A concurrent put may create the same directory first: look again.
      if (!made && !(st = lstat(c, p, what))) c.fail(what, name);
    }
    if (st && st->type == EntryType::symlink) fail_on(ELOOP, what, name);
    if (st && st->type != EntryType::directory) fail_on(ENOTDIR, what, name);
    if (made) touched(p);
    std::lock_guard lock(dirs_mu_);
    known_dirs_.insert(p);
    if (made) made_dirs_.insert(p);
  }
}

void SftpTransport::touched(const std::string& name) {
  std::lock_guard lock(dirs_mu_);
  dirty_dirs_.insert(parent_of(name));
}

// fsync@openssh.com on a file handle makes its bytes durable, not the
// directory entries that name it: each changed directory is opened and
// synced too, so a rename reported durable survives the server's power cut.
void SftpTransport::flush() {
  if (!fsync_) return;  // durability_gap() says so
  std::set<std::string> dirs;
  {
    std::lock_guard lock(dirs_mu_);
    dirs.swap(dirty_dirs_);
  }
  Lease c(pool_);
  try {
    for (const auto& d : dirs) sync_dir(*c, d);
  } catch (...) {
    std::lock_guard lock(dirs_mu_);
    dirty_dirs_.insert(dirs.begin(), dirs.end());  // the next flush tries them again
    throw;
  }
}

bool SftpTransport::claim_fresh(const std::string& name) {
  std::lock_guard lock(dirs_mu_);
  bool fresh = made_dirs_.count(parent_of(name)) && !made_names_.count(name);
  made_names_.insert(name);
  return fresh;
}

namespace {

void erase_tree(std::set<std::string>& names, const std::string& name) {
  for (auto it = names.lower_bound(name); it != names.end();) {
    if (*it == name || it->starts_with(name + "/")) it = names.erase(it);
    else if (!it->starts_with(name)) break;
    else ++it;
  }
}

}  // namespace

// A name moved or removed may come back as anything: it is looked at again,
// and a directory made here no longer counts as made here.
void SftpTransport::forget_dirs(const std::string& name) {
  std::lock_guard lock(dirs_mu_);
  erase_tree(known_dirs_, name);
  erase_tree(made_dirs_, name);
}

Stat SftpTransport::stat(const std::string& name) {
  require_clean(name, "cannot stat");
  Lease c(pool_);
  return stat_on(*c, name);
}

Stat SftpTransport::stat_on(Connection& c, const std::string& name) {
  if (!parents_are_dirs(c, name, "cannot stat")) return {};
  return lstat(c, name, "cannot stat").value_or(Stat{});
}

std::vector<Stat> SftpTransport::stat_many(const std::vector<std::string>& names) {
  for (const auto& n : names) require_clean(n, "cannot stat");
  Lease c(pool_);
  return stat_many_on(*c, names);
}

std::vector<Entry> SftpTransport::list(const std::string& dir) {
  if (!dir.empty()) require_clean(dir, "cannot list");
  Lease c(pool_);
  return list_on(*c, dir);
}

std::vector<Entry> SftpTransport::list_on(Connection& c, const std::string& dir) {
  if (!dir.empty()) {
    if (!parents_are_dirs(c, dir, "cannot list")) fail_on(ENOENT, "cannot list", dir);
    auto st = lstat(c, dir, "cannot list");
    if (!st) fail_on(ENOENT, "cannot list", dir);
    if (st->type == EntryType::symlink) fail_on(ELOOP, "cannot list", dir);
    if (st->type != EntryType::directory) fail_on(ENOTDIR, "cannot list", dir);
  }
  sftp_dir d = sftp_opendir(c.sftp(), full(dir).c_str());
  if (!d) c.fail("cannot list", dir);
  std::vector<Entry> out;
  while (sftp_attributes a = sftp_readdir(c.sftp(), d)) {
    AttrHolder h{a};
    std::string name = a->name ? a->name : "";
    if (name == "." || name == "..") continue;
    if (!is_clean_name(name) || name.find('/') != std::string::npos) {
      sftp_closedir(d);
      throw TransportError(EIO, fmt::format("the server listed an invalid name in {}", escape_for_display(dir)));
    }
    out.push_back({name, to_stat(a)});
  }
  bool complete = sftp_dir_eof(d) != 0;
  sftp_closedir(d);
  if (!complete) c.fail("cannot list", dir);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

}  // namespace sftp
}  // namespace sq::dest

namespace sq::dest {
namespace sftp {

namespace {

struct FileHolder {
  sftp_file f = nullptr;
  ~FileHolder() {
    if (f) sftp_close(f);
  }
  int close() {
    int rc = sftp_close(f);
    f = nullptr;
    return rc;
  }
};

}  // namespace

// A directory that is gone since it changed needs no sync: its entries
// went with it, and the directory it left is synced as changed too.
void SftpTransport::sync_dir(Connection& c, const std::string& dir) {
  FileHolder f;
  f.f = sftp_open(c.sftp(), full(dir).c_str(), O_RDONLY, 0);
  if (!f.f && c.alive() && c.last_errno() == ENOENT) return;
  if (!f.f || sftp_fsync(f.f) != 0) c.fail("cannot sync the directory", dir.empty() ? std::string(".") : dir);
}

PutResult SftpTransport::write_body(Connection& c, sftp_file f, const ReadFn& read, const std::string& name) {
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Hasher blake;
  std::optional<MultiHasher> side;
  if (!hash_algo_.empty() && hash_algo_ != "blake3") side.emplace(hash_algo_);
  PutResult result;
  for (;;) {
    std::size_t n = read(buf.get(), kChunk);
    if (n == 0) break;
    if (n > kChunk) throw TransportError(EINVAL, "the source of " + escape_for_display(name) + " overran its buffer");
    if (sftp_write(f, buf.get(), n) != static_cast<ssize_t>(n)) c.fail("cannot write", name);
    blake.update(buf.get(), n);
    if (side) side->update(buf.get(), n);
    result.bytes += static_cast<std::int64_t>(n);
    note_progress();
  }
  if (fsync_ && sftp_fsync(f) != 0) c.fail("cannot sync", name);
  result.hash = blake.finalize();
  if (side) result.sent_checksum = side->hex();
  return result;
}

PutResult SftpTransport::put(const std::string& name, const ReadFn& read, std::int64_t mtime_ns) {
  require_clean(name, "cannot put");
  Lease c(pool_);
  make_dirs(*c, parent_of(name), "cannot put", name);
  // Not every server honours O_EXCL: look first, unless the name is known
  // to be absent.
  if (!claim_fresh(name) && lstat(*c, name, "cannot put")) fail_on(EEXIST, "cannot create", name);
  FileHolder f;
  f.f = sftp_open(c->sftp(), full(name).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (!f.f) {
    if (c->alive() && lstat(*c, name, "cannot put")) fail_on(EEXIST, "cannot create", name);
    c->fail("cannot create", name);
  }
  touched(name);
  PutResult result;
  try {
    result = write_body(*c, f.f, read, name);
    if (f.close() != 0) c->fail("cannot write", name);
    struct timeval times[2] = {};
    times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(stored_mtime(mtime_ns) / 1000000000LL);
    if (sftp_utimes(c->sftp(), full(name).c_str(), times) != 0) c->fail("cannot set the mtime of", name);
  } catch (...) {
    // Ours, created exclusively just now: a half-written file must not stay.
    if (f.f) f.close();
    if (c->alive()) sftp_unlink(c->sftp(), full(name).c_str());
    throw;
  }
  result.mtime_ns = stored_mtime(mtime_ns);
  return result;
}

namespace {

Stat regular_or_fail(const std::optional<Stat>& st, const std::string& name, const char* what) {
  if (!st) fail_on(ENOENT, what, name);
  if (st->type == EntryType::symlink) fail_on(ELOOP, what, name);
  if (st->type == EntryType::directory) fail_on(EISDIR, what, name);
  if (st->type != EntryType::file) fail_on(EINVAL, what, name);
  return *st;
}

}  // namespace

Stat SftpTransport::require_regular(Connection& c, const std::string& name, const char* what) {
  if (!parents_are_dirs(c, name, what)) fail_on(ENOENT, what, name);
  return regular_or_fail(lstat(c, name, what), name, what);
}

// A listing is a few round trips for a whole folder, an lstat one per name.
constexpr std::size_t kListAtLeast = 8;

// A folder that is gone holds none of the names; any other trouble listing
// it (a symlink in the way, say): nullopt, and each name is looked at alone,
// so it fails exactly as its own stat would.
std::optional<std::map<std::string, Stat>> SftpTransport::listing(Connection& c, const std::string& dir) {
  std::map<std::string, Stat> out;
  try {
    for (auto& e : list_on(c, dir)) out.emplace(std::move(e.name), e.stat);
  } catch (const TransportError& e) {
    if (e.err() != ENOENT) return std::nullopt;
  }
  return out;
}

std::vector<Stat> SftpTransport::stat_many_on(Connection& c, const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::size_t>> by_dir;
  for (std::size_t i = 0; i < names.size(); ++i) by_dir[parent_of(names[i])].push_back(i);
  std::vector<Stat> out(names.size());
  for (const auto& [dir, at] : by_dir) {
    auto listed = at.size() >= kListAtLeast ? listing(c, dir) : std::nullopt;
    for (auto i : at) {
      if (!listed) {
        out[i] = stat_on(c, names[i]);
      } else if (auto it = listed->find(dir.empty() ? names[i] : names[i].substr(dir.size() + 1));
                 it != listed->end()) {
        out[i] = it->second;
      }
    }
  }
  return out;
}

std::vector<Stat> SftpTransport::require_regular_many(Connection& c, const std::vector<std::string>& names,
                                                      const char* what) {
  auto stats = stat_many_on(c, names);
  for (std::size_t i = 0; i < names.size(); ++i)
    stats[i] = regular_or_fail(stats[i].type == EntryType::none ? std::nullopt : std::optional(stats[i]), names[i], what);
  return stats;
}

// Reads ahead with several requests in flight: one round trip per chunk
// would make a download as slow as the link's latency.
class SftpReader final : public Reader {
 public:
  SftpReader(Pool& pool, SftpTransport& t, const std::string& name) : lease_(pool), name_(name) {
    st_ = t.require_regular(*lease_, name, "cannot get");
    file_.f = sftp_open(lease_->sftp(), t.full(name).c_str(), O_RDONLY, 0);
    if (!file_.f) lease_->fail("cannot get", name);
    buf_.reset(new char[kReadChunk]);
  }
  ~SftpReader() override { drain(); }
  std::size_t read(char* out, std::size_t len) override {
    while (pos_ == have_) {
      if (eof_) return 0;
      fill();
    }
    std::size_t n = std::min(len, have_ - pos_);
    std::memcpy(out, buf_.get() + pos_, n);
    pos_ += n;
    return n;
  }
  Stat stat() override { return st_; }

 private:
  // Exactly the file's size (as lstat saw it when opened) is asked for, in
  // requests that each must be answered whole: a small file costs one read,
  // not a window of requests answered "end of file", and a server that
  // serves less than asked, or a file that shrank, is an error, not a gap.
  void fill() {
    while (asked_ < st_.size && static_cast<int>(ids_.size()) < kReadsInFlight) {
      auto len = static_cast<std::uint32_t>(std::min<std::int64_t>(kReadChunk, st_.size - asked_));
      int id = sftp_async_read_begin(file_.f, len);
      if (id < 0) lease_->fail("cannot read", name_);
      ids_.push_back({id, len});
      asked_ += len;
    }
    if (ids_.empty()) {
      eof_ = true;
      return;
    }
    auto [id, len] = ids_.front();
    ids_.pop_front();
    int n = sftp_async_read(file_.f, buf_.get(), kReadChunk, static_cast<std::uint32_t>(id));
    if (n < 0) lease_->fail("cannot read", name_);
    if (static_cast<std::uint32_t>(n) != len)
      throw TransportError(EIO, fmt::format("cannot read {}: the server sent {} bytes where {} were asked "
                                            "(the file changed, or the server serves short reads)",
                                            escape_for_display(name_), n, len));
    pos_ = 0;
    have_ = static_cast<std::size_t>(n);
    note_progress();
  }
  // Answers still on their way are read, so the connection goes back clean.
  void drain() {
    for (auto [id, len] : ids_)
      if (lease_->alive()) sftp_async_read(file_.f, buf_.get(), kReadChunk, static_cast<std::uint32_t>(id));
    ids_.clear();
  }
  Lease lease_;
  std::string name_;
  Stat st_;
  FileHolder file_;
  std::unique_ptr<char[]> buf_;
  std::deque<std::pair<int, std::uint32_t>> ids_;  // requests in flight and the bytes each asked for
  std::size_t pos_ = 0, have_ = 0;
  std::int64_t asked_ = 0;
  bool eof_ = false;
};

std::unique_ptr<Reader> SftpTransport::get(const std::string& name) {
  require_clean(name, "cannot get");
  return std::make_unique<SftpReader>(pool_, *this, name);
}

// One hash command for all names: starting a remote process per file
// would cost more than hashing a small one.
std::vector<ReadBack> SftpTransport::read_back_many(const std::vector<std::string>& names) {
  for (const auto& n : names) require_clean(n, "cannot read back");
  Lease c(pool_);
  std::vector<ReadBack> out;
  std::vector<std::string> paths;
  auto stats = require_regular_many(*c, names, "cannot read back");
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& n = names[i];
    ReadBack rb;
    rb.bytes = stats[i].size;
    rb.algo = hash_algo_;
    rb.by_server = !hash_algo_.empty();
    out.push_back(rb);
    paths.push_back(full(n));
  }
  if (hash_algo_.empty() || names.empty()) return out;
  auto sums = server_hashes(*c, hash_algo_, paths);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].checksum = sums[i];
    if (hash_algo_ == "blake3") out[i].hash = *digest_from_hex(sums[i]);
  }
  return out;
}

}  // namespace sftp
}  // namespace sq::dest

namespace sq::dest {
namespace sftp {

void SftpTransport::rename(const std::string& from, const std::string& to) {
  require_clean(from, "cannot move");
  require_clean(to, "cannot move");
  if (to.starts_with(from + "/")) fail_on(EINVAL, "cannot move a directory into itself:", to);
  Lease c(pool_);
  if (!parents_are_dirs(*c, from, "cannot move")) fail_on(ENOENT, "cannot move", from);
  make_dirs(*c, parent_of(to), "cannot move", to);
  // Servers differ on replacing an existing target: never ask them to.
  if (!claim_fresh(to) && lstat(*c, to, "cannot move")) fail_on(EEXIST, "cannot move onto", to);
  forget_dirs(from);
  touched(from);
  touched(to);
  if (sftp_rename(c->sftp(), full(from).c_str(), full(to).c_str()) == 0) return;
  // Why it failed is asked only now: a missing source costs no round trip
  // on the way that works.
  if (c->alive() && !lstat(*c, from, "cannot move")) fail_on(ENOENT, "cannot move", from);
  c->fail("cannot move", from);
}

void SftpTransport::remove(const std::string& name) {
  require_clean(name, "cannot remove");
  Lease c(pool_);
  if (!parents_are_dirs(*c, name, "cannot remove")) fail_on(ENOENT, "cannot remove", name);
  auto st = lstat(*c, name, "cannot remove");
  if (!st) fail_on(ENOENT, "cannot remove", name);
  forget_dirs(name);
  touched(name);
  if (st->type != EntryType::directory) {
    if (sftp_unlink(c->sftp(), full(name).c_str()) != 0) c->fail("cannot remove", name);
    return;
  }
  if (sftp_rmdir(c->sftp(), full(name).c_str()) == 0) return;
  // Servers report a non-empty directory as a plain failure.
  if (c->alive() && !list(name).empty()) fail_on(ENOTEMPTY, "cannot remove", name);
  c->fail("cannot remove", name);
}

void SftpTransport::mkdirs(const std::string& dir) {
  require_clean(dir, "cannot create");
  Lease c(pool_);
  make_dirs(*c, dir, "cannot create", dir);
}

std::string SftpTransport::durability_gap() {
  if (fsync_) return {};
  return "the server does not offer fsync@openssh.com, so written bytes may not survive a power cut there";
}

SftpTransport::SftpTransport(const SftpOptions& o, bool create_root) : pool_(o), root_(o.root) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  Lease c(pool_);
  fsync_ = c->has_fsync();
  std::string ignored;
  hash_algo_ = probe_server_hash(*c, o.hash_algo, &ignored);
  AttrHolder h;
  h.a = sftp_lstat(c->sftp(), full("").c_str());
  if (!h.a && c->last_errno() == ENOENT && create_root) {
    if (sftp_mkdir(c->sftp(), full("").c_str(), 0755) != 0) c->fail("cannot create the root", full(""));
    h.a = sftp_lstat(c->sftp(), full("").c_str());
  }
  if (!h.a && c->last_errno() == ENOENT)
    throw TransportError(ENOENT, fmt::format("destination root {} does not exist on {} — is the disk mounted there? "
                                             "For the first sync pass --init",
                                             escape_for_display(full("")), endpoint_of(o)));
  if (!h.a) c->fail("cannot look at the root", full(""));
  if (type_of(h.a) != EntryType::directory)
    throw TransportError(ENOTDIR, fmt::format("destination root {} on {} is not a directory",
                                              escape_for_display(full("")), endpoint_of(o)));
}

}  // namespace sftp

std::unique_ptr<Transport> open_sftp_transport(const SftpOptions& o, bool create_root) {
  return std::make_unique<sftp::SftpTransport>(o, create_root);
}

SftpFacts probe_sftp(const SftpOptions& o) {
  SftpFacts facts;
  sftp::Connection c(o, &facts);
  if (!c.ready()) return facts;
  facts.hash_algo = sftp::probe_server_hash(c, o.hash_algo, &facts.hash_problem);
  std::string root = o.root.empty() ? "." : o.root;
  sftp::AttrHolder h;
  h.a = sftp_lstat(c.sftp(), root.c_str());
  facts.root_exists = h.a && sftp::type_of(h.a) == EntryType::directory;
  if (sftp_extension_supported(c.sftp(), "statvfs@openssh.com", "2")) {
    if (sftp_statvfs_t v = sftp_statvfs(c.sftp(), root.c_str())) {
      facts.free_bytes = static_cast<std::int64_t>(v->f_bavail * v->f_frsize);
      sftp_statvfs_free(v);
    }
  }
  return facts;
}

}  // namespace sq::dest
