// The shared push phases (stage.hpp): stage, flush, read back.
#include "engine/sync/stage.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "core/fs.hpp"
#include "core/text.hpp"

namespace sq::engine::sync {

void drop(Push& p, Item& it, const std::string& msg) {
  it.ok = false;
  p.report.failed += 1;
  p.file_error(it.w->path, msg);
}

namespace {

void report_trouble(Push& p, Item& it) {
  auto trouble = std::exchange(it.trouble, Item::Trouble::none);
  if (trouble == Item::Trouble::error) return drop(p, it, it.message);
  if (trouble != Item::Trouble::drift) return;
  it.ok = false;
  p.report.drift += 1;
  p.warn(it.w->path, "changed since it was indexed; not stored under the indexed hash — re-index and sync again");
}

}  // namespace

// Reports what the steps found, in plan order, on the driver thread; a
// simulated crash or a stalled call in any step ends the push here.
void report_all(Push& p, std::vector<Item>& items) {
  for (auto& it : items)
    if (it.fatal) std::rethrow_exception(it.fatal);
  for (auto& it : items) report_trouble(p, it);
}

namespace {

void stage_one(Push& p, Item& it) {
  const auto& w = *it.w;
  int fd = open_beneath(p.vol.root.get(), w.path, O_RDONLY);
  if (fd < 0) throw Error(ErrorKind::io, fmt::format("cannot read the source: {}", std::strerror(-fd)));
  Fd src(fd);
  auto put = p.t->put(it.staged,
                      [&](char* buf, std::size_t len) {
                        for (;;) {
                          ssize_t n = ::read(fd, buf, len);
                          if (n >= 0) return static_cast<std::size_t>(n);
                          if (errno != EINTR) fail_errno("reading the source", errno);
                        }
                      },
                      w.mtime_ns);
  if (put.bytes != w.size || put.hash != w.hash) it.trouble = Item::Trouble::drift;
  it.sent_checksum = put.sent_checksum;
  it.stored_mtime = put.mtime_ns;
}

}  // namespace

void stage(Push& p, std::vector<Item>& items) {
  run_in_flight(p, items, p.in_flight, [&](Item& it) { stage_one(p, it); });
}

void finish_stage(Push& p, std::vector<Item>& items) {
  report_all(p, items);
  p.t->flush();
}

namespace {

void take_read_back(Item& it, const dest::ReadBack& rb) {
  if (rb.bytes != it.w->size || (rb.measured() && !rb.matches(it.w->hash, it.sent_checksum))) {
    it.trouble = Item::Trouble::error;
    it.message = rb.by_server ? "the server's hash of the stored copy does not match what was sent — its disk may be "
                                "failing"
                              : "the copy read back from the destination does not match — the disk may be failing";
    return;
  }
  it.from_medium = rb.from_medium;
  it.by_server = rb.by_server;
  if (!rb.measured()) return;  // the destination cannot look at its bytes: nothing is claimed
  it.algo = rb.algo;
  it.checksum = rb.checksum;
  it.verified_at = now_ns();
}

// A direct read mostly waits for the device and costs little CPU, so more
// of them are kept in flight than stagings.
constexpr std::size_t kReadBacksPerStaging = 4;

void read_back_one(Push& p, Item& it) { take_read_back(it, p.t->read_back(it.staged)); }

// A server's hash command is asked for several copies at once (see
// dest::kReadBackGroupBytes). A failure fails every copy of its group.
void read_back_group(Push& p, const std::vector<Item*>& group) {
  std::vector<std::string> names;
  for (auto* it : group) names.push_back(it->staged);
  try {
    auto rbs = p.t->read_back_many(names);
    for (std::size_t i = 0; i < group.size(); ++i) take_read_back(*group[i], rbs[i]);
  } catch (const dest::StallError&) {
    group.front()->fatal = std::current_exception();
  } catch (const Error& e) {
    for (auto* it : group) {
      it->trouble = Item::Trouble::error;
      it->message = e.what();
    }
  } catch (...) {
    group.front()->fatal = std::current_exception();
  }
}

void read_back_on_server(Push& p, std::vector<Item>& items) {
  std::vector<Item*> live;
  for (auto& it : items)
    if (it.ok) live.push_back(&it);
  std::int64_t live_bytes = 0;
  for (const auto* it : live) live_bytes += it->w->size;
  // Starting the server's command costs more than hashing a small file: a
  // batch of small files is one group; big ones are spread over up to
  // in_flight groups, so the server's cores hash in parallel.
  auto width = static_cast<std::size_t>(
      std::clamp<std::int64_t>((live_bytes + dest::kReadBackGroupBytes - 1) / dest::kReadBackGroupBytes, 1,
                               static_cast<std::int64_t>(p.in_flight)));
  std::size_t per = std::max<std::size_t>(1, (live.size() + width - 1) / width);
  std::vector<std::vector<Item*>> groups;
  for (std::size_t i = 0; i < live.size(); i += per)
    groups.emplace_back(live.begin() + static_cast<std::ptrdiff_t>(i),
                        live.begin() + static_cast<std::ptrdiff_t>(std::min(live.size(), i + per)));
  {
    dest::HelperThreads helpers(*p.raw);
    for (const auto& g : groups) helpers.spawn([&p, &g] { read_back_group(p, g); });
    helpers.wait();
  }
  report_all(p, items);
}

}  // namespace

// A copy hashed from the page cache proves less than one read from the
// device: one such copy makes the whole push claim the weaker method.
void read_back(Push& p, std::vector<Item>& items) {
  if (p.raw->hashes_on_server()) read_back_on_server(p, items);
  else in_flight(p, items, p.in_flight * kReadBacksPerStaging, [&](Item& it) { read_back_one(p, it); });
  for (const auto& it : items)
    if (it.ok && !it.from_medium && !it.by_server) p.all_read_back = false;
}

std::vector<Item> next_batch(const Push& p, const Plan& plan, std::size_t& i, std::size_t max_files,
                             const StagedName& staged_name) {
  std::vector<Item> batch;
  std::int64_t bytes = 0;
  while (i < plan.writes.size() && batch.size() < max_files && (batch.empty() || bytes < p.opts.batch_bytes)) {
    bytes += plan.writes[i].size;
    Item item;
    item.w = &plan.writes[i++];
    item.staged = staged_name(*item.w);
    batch.push_back(std::move(item));
  }
  return batch;
}

}  // namespace sq::engine::sync
