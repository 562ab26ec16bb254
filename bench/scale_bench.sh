#!/usr/bin/env bash
# Every command on 10k and 100k files (and 1M with --million), wall time and
# peak RSS side by side, and the growth from the smaller tree to the larger
# one per command. Linear growth is 10× (100×10k → 1M: 10×); the target is
# at most 13× (30% slack) for every command.
#   restore of everything  vs cp -a + b3sum of the same files (target <= 1.3x),
#                          both into a new folder right after one was deleted
#   status                 at 100k files                      (target < 100 ms)
# Files are 1–4 KiB, 100 to a folder. One run per figure: the figures that
# matter are ratios of a whole command, far above the noise of one run.
#   bash bench/scale_bench.sh [--million]
set -euo pipefail
cd "$(dirname "$0")/.."
SQUIRREL_TARGETS=squirrel bash scripts/build.sh build >/dev/null
BIN="$PWD/build/squirrel"
OUT="${BENCH_DIR:-$PWD/bench/out}/scale"
SIZES=(${SCALE_SIZES:-10000 100000})  # SCALE_SIZES="1000" for a quick check of the script
[ "${1:-}" = "--million" ] && SIZES+=(1000000)
rm -rf "$OUT"; mkdir -p "$OUT"

# timed [--may-refuse] <label> <cmd...>: appends "label<TAB>seconds<TAB>peak
# KiB" to $W/times. A step must succeed; with --may-refuse exit 1 is a
# refusal the step expects (the demoted copy is neither offloaded nor
# restorable). Anything else stops the benchmark: a failed step's time
# measures nothing.
timed() {
  local max_rc=0
  [ "$1" = "--may-refuse" ] && { max_rc=1; shift; }
  local label=$1; shift
  local a b rc=0; a=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$W/rss.txt" "$@" >/dev/null 2>"$W/stderr.txt" || rc=$?
  b=$(date +%s.%N)
  [ "$rc" -le "$max_rc" ] || { echo "$label failed ($rc):" >&2; cat "$W/stderr.txt" >&2; exit 1; }
  printf '%s\t%s\t%s\n' "$label" "$(echo "$b - $a" | bc)" "$(tail -1 "$W/rss.txt")" >> "$W/times"
}
sq() { "$BIN" --config "$W/config.toml" "$@"; }  # for untimed steps; timed ones name the binary

run_tree() {  # files
  W="$OUT/$1"; mkdir -p "$W"
  python3 bench/gen_tree.py "$W/vol" "$1" $(($1 / 100)) 1024 4096
  printf 'db = "%s/index.db"\n[backups]\nenabled = false\n[volumes.v]\npath = "%s/vol"\nsync_to = ["d"]\noffload_requires = ["d"]\n[destinations.d]\ntype = "local"\nroot = "%s/dest"\n' \
    "$W" "$W" "$W" > "$W/config.toml"
  : > "$W/times"; sync
  timed "first index" "$BIN" --config "$W/config.toml" index v
  timed "shallow re-index" "$BIN" --config "$W/config.toml" index v
  timed "first sync" "$BIN" --config "$W/config.toml" sync v --init
  timed "unchanged sync" "$BIN" --config "$W/config.toml" sync v
  timed "verify" "$BIN" --config "$W/config.toml" verify d
  timed "verify --full" "$BIN" --config "$W/config.toml" verify d --full
  timed "status" "$BIN" --config "$W/config.toml" status
  timed "query --duplicates" "$BIN" --config "$W/config.toml" query --duplicates
  timed "query --missing" "$BIN" --config "$W/config.toml" query --missing
  timed "audit" "$BIN" --config "$W/config.toml" audit v
  timed "db check" "$BIN" --config "$W/config.toml" db check
  timed "offload (fingerprint-verified)" "$BIN" --config "$W/config.toml" offload v .
  timed "restore one folder" "$BIN" --config "$W/config.toml" restore v d0001
  timed "restore everything" "$BIN" --config "$W/config.toml" restore v
  sq sync v >/dev/null  # restored files count as pushed again only after a push
  demote
  timed --may-refuse "offload (presence+size)" "$BIN" --config "$W/config.toml" offload v .
  timed --may-refuse "restore without an index" "$BIN" --config "$W/config.toml" --db "$W/fresh.db" restore v --to "$W/elsewhere"
  compare_with_cp
  recover_the_machine
  timed "destination reset" "$BIN" --config "$W/config.toml" destination reset d --yes
}

# The two ways back after losing the machine, each with a database of its
# own: the index snapshot the destination holds installed by `recover` (the
# volume folder still holds its marker, so nothing else is written), and
# (no snapshot) the first sync of a fresh database onto the mirror, which
# reads back and adopts every copy its receipts vouch for. The second uses
# the tree "restore without an index" wrote.
recover_the_machine() {
  sq db backup --to "$W/dest/v/.squirrel-index/index-20260101T000000.000Z-run-999999999.db" >/dev/null
  sed "s#^db = .*#db = \"$W/recovered.db\"#" "$W/config.toml" > "$W/recover.toml"
  timed "recover --execute" "$BIN" --config "$W/recover.toml" recover --from d --execute --yes
  rm -f "$W/dest/v/.squirrel-index/index-20260101T000000.000Z-run-999999999.db"
  sed "s#^db = .*#db = \"$W/fresh.db\"#; s#path = \"$W/vol\"#path = \"$W/elsewhere\"#" "$W/config.toml" > "$W/fresh.toml"
  "$BIN" --config "$W/fresh.toml" index v >/dev/null
  timed "first sync adopting every copy" "$BIN" --config "$W/fresh.toml" sync v
}

# One copy rewritten with other bytes of the same size and mtime: a full
# verify finds it, demotes the destination's evidence to presence+size and
# latches the alarm, which a person acknowledges. Offload then rests on each
# copy's own read-back checksum.
demote() {
  local copy; copy=$(find "$W/dest/v/d0000" -type f | head -1)
  python3 - "$copy" <<'EOF'
import os, sys
p = sys.argv[1]; st = os.stat(p)
with open(p, "r+b") as f:
    b = bytearray(f.read()); b[-1] ^= 0xFF; f.seek(0); f.write(b)
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF
  sq verify d --full >/dev/null 2>&1 || true
  sq verify ack d >/dev/null
}

# Restore against what a user would run instead (copy back, then check),
# on equal terms: each into a new folder, each right after a tree of the
# same files was deleted. After a mass delete ext4 searches its inode
# tables for reusable inodes on every create, which costs both alike; the
# in-place restore above pays it too, right after the offload.
compare_with_cp() {
  rm -rf "$W/new"; cp -a "$W/dest/v" "$W/new"; sync; rm -rf "$W/new"; sync
  timed --may-refuse "restore everything to a new folder" "$BIN" --config "$W/config.toml" restore v --to "$W/new"
  rm -rf "$W/new"; sync
  timed "cp -a + b3sum (baseline)" bash -c "cp -a '$W/dest/v' '$W/new' && find '$W/new' -type f -print0 | xargs -0 -n 1000 b3sum"
  rm -rf "$W/new"
}

for n in "${SIZES[@]}"; do run_tree "$n"; done

# The table: one row per step, one column pair per tree, then the growth.
awk -F'\t' -v sizes="${SIZES[*]}" -v out="$OUT" '
BEGIN {
  n = split(sizes, sz, " ")
  for (i = 1; i <= n; i++) {
    f = out "/" sz[i] "/times"
    while ((getline line < f) > 0) { split(line, c, "\t"); t[c[1], i] = c[2]; m[c[1], i] = c[3]; if (i == 1) order[++k] = c[1] }
  }
  printf "%-32s", "step"
  for (i = 1; i <= n; i++) printf " %12s %9s", sz[i] " files", "RSS MiB"
  for (i = 2; i <= n; i++) printf " %9s", sz[i] / sz[i-1] "x files"
  printf "\n"
  for (j = 1; j <= k; j++) {
    s = order[j]; printf "%-32s", s
    for (i = 1; i <= n; i++) printf " %11.3fs %9.1f", t[s, i], m[s, i] / 1024
    for (i = 2; i <= n; i++) printf " %8.1fx", (t[s, i-1] > 0 ? t[s, i] / t[s, i-1] : 0)
    printf "\n"
  }
  last = n
  printf "\nrestore everything to a new folder / (cp -a + b3sum) at %s files: %.2fx (target <= 1.3x)\n", sz[last],
         t["restore everything to a new folder", last] / t["cp -a + b3sum (baseline)", last]
  printf "status at %s files: %.0f ms (target < 100 ms)\n", sz[last], t["status", last] * 1000
}' /dev/null
