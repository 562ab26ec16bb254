// The one write path of `restore`: bytes are streamed from the destination
// into a temp file beside the target while hashed and checked; the driver
// (restore/run.cpp) flushes a batch of temps and only then renames each
// onto its target name without replacing anything, so a target name never
// holds a partial, unverified or unflushed file. The temp files a
// killed restore left behind are removed here too, once provably its own.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <set>
#include <string_view>

#include "core/error.hpp"
#include "engine/restore/internal.hpp"
#include "engine/sync/packed/member_reader.hpp"
#include "store/files.hpp"

namespace sq::engine::restore_detail {

namespace {

// Files at least this large are written with O_DIRECT: the bytes go from
// the hashed buffer straight to the device (no page-cache copy to flush
// later), and several files in flight keep the device busy. Smaller files
// and file systems without O_DIRECT (tmpfs) use buffered writes.
constexpr std::int64_t kDirectMin = 4 << 20;

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno("cannot write the restored file", errno);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads until the buffer is full or the input ends, so every write but
// the last is a whole, aligned buffer.
std::size_t fill(dest::Reader& in, CopyBuffer& buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    std::size_t n = in.read(buf.data() + got, buf.size() - got);
    if (n == 0) break;
    got += n;
  }
  return got;
}

// Writes one chunk; on an O_DIRECT descriptor an unaligned tail (only the
// last chunk has one) is written after switching back to buffered I/O.
void write_chunk(int fd, bool& direct, const char* p, std::size_t n) {
  if (direct && n % CopyBuffer::kAlign != 0) {
    std::size_t aligned = n - n % CopyBuffer::kAlign;
    write_all(fd, p, aligned);
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0) fail_errno("cannot finish the restored file", errno);
    direct = false;
    p += aligned;
    n -= aligned;
  }
  write_all(fd, p, n);
}

struct Streamed {
  std::int64_t bytes = 0;
  Digest hash{};
};

Streamed stream_into(dest::Reader& in, int out, bool direct, CopyBuffer& buf) {
  Hasher h;
  Streamed s;
  while (std::size_t n = fill(in, buf)) {
    h.update(buf.data(), n);
    write_chunk(out, direct, buf.data(), n);
    s.bytes += static_cast<std::int64_t>(n);
  }
  s.hash = h.finalize();
  return s;
}

// Creates the temp file exclusively; O_DIRECT where it pays and the file
// system takes it.
Fd create_temp(int parent, const std::string& tmp, const RestoreItem& it, bool& direct) {
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  direct = it.size >= kDirectMin;
  if (direct) {
    int fd = ::openat(parent, tmp.c_str(), flags | O_DIRECT, 0644);
    if (fd >= 0) return Fd(fd);
    if (errno != EINVAL) fail_errno("cannot create a temporary file beside the target", errno);
    direct = false;
  }
  Fd out(::openat(parent, tmp.c_str(), flags, 0644));
  if (!out) fail_errno("cannot create a temporary file beside the target", errno);
  return out;
}

void check_expected(const RestoreItem& it, const Streamed& s) {
  if (it.size >= 0 && s.bytes != it.size)
    throw MismatchError(ErrorKind::corrupt, fmt::format("the copy at the destination has {} bytes, not the expected "
                                                        "{} — not restored; the copy is damaged or changed, look for "
                                                        "another one (`squirrel verify` checks a destination)",
                                                        s.bytes, it.size));
  if (it.hash && s.hash != *it.hash)
    throw MismatchError(ErrorKind::corrupt, "the copy at the destination does not hash to what the index or its "
                                            "receipt records — not restored; the copy is damaged, look for another one "
                                            "(`squirrel verify` checks a destination)");
}

void set_mtime(int fd, std::int64_t mtime_ns) {
  struct timespec times[2] = {{0, UTIME_OMIT}, {mtime_ns / 1000000000LL, mtime_ns % 1000000000LL}};
  if (::futimens(fd, times) != 0) fail_errno("cannot set the restored file's modification time", errno);
}

}  // namespace

Fd open_parent(int base, const std::string& path) {
  auto [folder, name] = store::split_path(path);
  Fd dir(::dup(base));
  if (folder.empty()) return dir;
  std::size_t start = 0;
  while (start <= folder.size()) {
    auto end = folder.find('/', start);
    if (end == std::string::npos) end = folder.size();
    std::string part = folder.substr(start, end - start);
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("cannot create " + part, errno);
    int next = ::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) fail_errno(fmt::format("{} is not a plain directory (a symlink or a file is in the way)", part), errno);
    dir = Fd(next);
    start = end + 1;
  }
  return dir;
}

Fd open_existing_dir(int base, const std::string& folder) {
  if (folder.empty()) return Fd(::dup(base));
  int fd = open_beneath(base, folder, O_RDONLY | O_DIRECTORY);
  return Fd(fd < 0 ? -1 : fd);
}

bool already_correct(int parent, const std::string& name, const RestoreItem& it, CopyBuffer& buf) {
  if (!it.hash) return false;  // nothing says what "correct" is
  Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || (it.size >= 0 && st.st_size != it.size))
    return false;
  Hasher h;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  return h.finalize() == *it.hash;
}

std::int64_t fetch_verified(dest::Transport& t, int parent, const std::string& tmp, const RestoreItem& it,
                            CopyBuffer& buf, sync::packed::MemberCursors* cursors) {
  bool direct = false;
  Fd out = create_temp(parent, tmp, it, direct);
  try {
    auto in = it.member_offset >= 0 ? sync::packed::open_member(t, it.source, it.member_offset, it.member_length, cursors)
                                    : t.get(it.source);
    auto streamed = stream_into(*in, out.get(), direct, buf);
    check_expected(it, streamed);
    set_mtime(out.get(), it.mtime_ns);
    return streamed.bytes;
  } catch (...) {
    ::unlinkat(parent, tmp.c_str(), 0);
    throw;
  }
}

void move_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) != 0)
    fail_errno(fmt::format("cannot move {} into place", to), errno);
}

namespace {

constexpr std::string_view kTempPrefix = ".squirrel-restore-";
constexpr std::size_t kTempHashDigits = 16;

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

// The names in `dir` that are restore temps, with their run ids.
std::vector<std::pair<std::string, std::int64_t>> temps_in(int dir) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  int fd = ::dup(dir);
  if (fd < 0) return out;
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    ::close(fd);
    return out;
  }
  while (const dirent* e = ::readdir(d.get()))
    if (auto run = temp_name_run(e->d_name)) out.emplace_back(e->d_name, *run);
  return out;
}

}  // namespace

std::string temp_name(std::int64_t run_id, const std::string& name) {
  return fmt::format("{}{}-{}", kTempPrefix, run_id, to_hex(blake3(name)).substr(0, kTempHashDigits));
}

std::optional<std::int64_t> temp_name_run(const std::string& name) {
  // ".squirrel-restore-<positive decimal, no leading zero>-<16 lowercase hex>"
  if (!name.starts_with(kTempPrefix) || name.size() < kTempPrefix.size() + 2 + kTempHashDigits) return std::nullopt;
  std::string_view rest(name);
  rest.remove_prefix(kTempPrefix.size());
  std::string_view digits = rest.substr(0, rest.size() - kTempHashDigits - 1);
  std::string_view hash = rest.substr(rest.size() - kTempHashDigits);
  if (rest[digits.size()] != '-' || !lower_hex(hash) || digits.empty() || digits[0] == '0') return std::nullopt;
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id <= 0) return std::nullopt;
  return id;
}

LeftoverCleanup remove_leftover_temps(int base, const std::vector<RestoreItem>& items, const IsOwnLeftover& own,
                                      const WarnFn& warn) {
  std::set<std::string> folders;
  for (const auto& it : items) folders.insert(store::split_path(it.path).first);
  LeftoverCleanup out;
  std::set<std::int64_t> runs;
  for (const auto& folder : folders) {
    Fd dir = open_existing_dir(base, folder);
    if (!dir) continue;  // nothing was ever restored there
    for (const auto& [name, run] : temps_in(dir.get())) {
      struct stat st {};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      LeftoverTemp found{run, static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec};
      if (!own(found)) continue;
      std::string path = store::join_path(folder, name);
      if (::unlinkat(dir.get(), name.c_str(), 0) != 0) {
        warn(path, errno_message("cannot remove this leftover of an interrupted restore — remove it by hand", errno));
        continue;
      }
      out.removed += 1;
      runs.insert(run);
    }
  }
  out.runs.assign(runs.begin(), runs.end());
  return out;
}

}  // namespace sq::engine::restore_detail
