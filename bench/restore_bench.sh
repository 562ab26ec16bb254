#!/usr/bin/env bash
# The restore row of bench/loop_bench.sh on its own, to iterate quickly:
# `restore --to` of tree L (16 x 64 MiB) vs `cp -a` + `b3sum` of the copy,
# same method (warm caches, median of 3, runs interleaved so both sides see
# the same machine load).
#   BIN=path/to/squirrel   the binary to measure (default: build/squirrel, built first)
#   RUNS=5                 how many runs to take the median of (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then bash scripts/build.sh build >/dev/null; BIN="$PWD/build/squirrel"; fi
OUT="${BENCH_DIR:-$PWD/bench/out}"
W="$OUT/restore"
RUNS="${RUNS:-3}"
[ -f "$OUT/L/.done" ] || { echo "run bench/index_bench.sh first to generate the trees" >&2; exit 1; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }

if [ ! -f "$W/.synced" ]; then
  rm -rf "$W"; mkdir -p "$W"
  cp -a "$OUT/L" "$W/vol"; rm -f "$W/vol/.squirrel-volume" "$W/vol/.done"
  printf 'db = "%s/index.db"\n[backups]\nenabled = false\n[volumes.v]\npath = "%s/vol"\nsync_to = ["d"]\n[destinations.d]\ntype = "local"\nroot = "%s/dest"\n' \
    "$W" "$W" "$W" > "$W/config.toml"
  "$BIN" --config "$W/config.toml" index v >/dev/null
  "$BIN" --config "$W/config.toml" sync v --init >/dev/null
  touch "$W/.synced"
fi

: > "$W/t_sq"; : > "$W/t_cp"
for _ in $(seq "$RUNS"); do
  rm -rf "$W/out"; sync; a=$(now); "$BIN" --config "$W/config.toml" restore v --to "$W/out" >/dev/null; b=$(now)
  secs "$a" "$b" >> "$W/t_sq"
  rm -rf "$W/cpout"; sync; a=$(now); cp -a "$W/dest/v" "$W/cpout" && b3sum "$W"/cpout/*.bin >/dev/null; b=$(now)
  secs "$a" "$b" >> "$W/t_cp"
done
cmp -s <(cd "$W/vol" && b3sum *.bin) <(cd "$W/out" && b3sum *.bin) || { echo "restored bytes differ" >&2; exit 1; }
tq=$(median < "$W/t_sq"); tc=$(median < "$W/t_cp")
echo "restore L vs cp+b3sum — $(date -u +%Y-%m-%d) — median of $RUNS"
printf '%-28s %8ss %8ss %7s %s\n' "restore --to of L" "$tq" "$tc" "$(echo "scale=2; $tq / $tc" | bc)" "<= 1.3"
echo "runs: squirrel $(tr '\n' ' ' < "$W/t_sq")| baseline $(tr '\n' ' ' < "$W/t_cp")"
