// The destination marker gate. A missing marker is ambiguous (new disk or
// unmounted disk), so only --init may create one, and only where the
// volume directory is positively empty.
#include <fmt/format.h>

#include "core/text.hpp"
#include "engine/sync/push.hpp"

namespace sq::engine::sync {

namespace {

[[noreturn]] void refuse(const std::string& msg) { throw Error(ErrorKind::refused, msg); }

std::string read_all(dest::Transport& t, const std::string& name) {
  auto r = t.get(name);
  std::string out;
  char buf[4096];
  while (std::size_t n = r->read(buf, sizeof buf)) {
    out.append(buf, n);
    if (out.size() > 65536) refuse(fmt::format("{} is unexpectedly large for a marker — inspect it", name));
  }
  return out;
}

void require_empty_volume_dir(Push& p) {
  auto st = p.raw->stat(p.name());
  if (st.type == dest::EntryType::none) return;
  if (st.type != dest::EntryType::directory)
    refuse(fmt::format("{}/{} exists and is not a directory — squirrel will not write there", p.root, p.name()));
  auto entries = p.raw->list(p.name());
  for (const auto& e : entries)
    if (e.name != kStaging)
      refuse(fmt::format("{}/{} already holds files squirrel did not write (e.g. {}) — --init only starts an empty "
                         "directory; choose an empty one",
                         p.root, p.name(), escape_for_display(e.name)));
}

void write_marker(Push& p) {
  auto staged = p.in_volume(std::string(kStaging) + "/volume-marker");
  auto text = render_marker({p.name(), now_ns(), std::nullopt, p.st.self_node_name()});
  // A bootstrap that died between staging and renaming left its staged
  // marker behind; it is ours (the volume directory held nothing else).
  if (p.t->stat(staged).type != dest::EntryType::none) p.t->remove(staged);
  std::size_t off = 0;
  p.t->put(staged,
           [&](char* buf, std::size_t len) {
             std::size_t n = std::min(len, text.size() - off);
             std::copy(text.data() + off, text.data() + off + n, buf);
             off += n;
             return n;
           },
           now_ns());
  p.t->flush();
  p.t->rename(staged, p.in_volume(kMarkerName));
  p.t->flush();
  p.report.initialized = true;
}

}  // namespace

void check_destination_marker(Push& p) {
  auto marker = p.in_volume(kMarkerName);
  dest::Stat st;
  try {
    st = p.raw->stat(marker);
  } catch (const Error& e) {
    refuse(fmt::format("cannot read the marker {}/{}: {} — fix the destination and retry", p.root, marker, e.what()));
  }
  if (st.type == dest::EntryType::none) {
    if (!p.opts.init)
      refuse(fmt::format("no .squirrel-volume marker at {}/{} — is the right disk mounted? For the first sync to this "
                         "destination pass --init",
                         p.root, p.name()));
    require_empty_volume_dir(p);
    if (!p.opts.dry_run) write_marker(p);
    return;
  }
  if (st.type != dest::EntryType::file)
    refuse(fmt::format("{}/{} is not a regular file — squirrel will not trust or replace it", p.root, marker));
  auto parsed = parse_marker(read_all(*p.raw, marker));
  if (!parsed) refuse(fmt::format("{}/{} is not a valid squirrel marker — inspect it", p.root, marker));
  if (parsed->volume != p.name())
    refuse(fmt::format("{}/{} belongs to volume \"{}\", not \"{}\" — check `root` of destination \"{}\"", p.root,
                       p.name(), escape_for_display(parsed->volume), p.name(), p.dest()));
}

}  // namespace sq::engine::sync
