#!/usr/bin/env bash
# Sync, offload, restore and status benchmarks, side by side in one run with
# what a user would otherwise run. Uses the trees of bench/index_bench.sh
# (generated if missing). Every timing is the median of 3 runs.
#   sync L        vs cp -a + sync + b3sum of the copy      (target <= 1.2x)
#   sync S        vs the same pipeline                     (target <= 1.5x)
#   re-sync S     vs rsync -a of the unchanged tree        (target <= 0.5x)
#   offload S     vs b3sum + rm of the same files          (target <= 1.5x)
#   restore L     vs cp + b3sum                            (target <= 1.3x)
#   status        on the 100k-file volume                  (target < 100 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build >/dev/null
BIN="$PWD/build/squirrel"
OUT="${BENCH_DIR:-$PWD/bench/out}"
W="$OUT/loop"
mkdir -p "$OUT"
[ -f "$OUT/S/.done" ] && [ -f "$OUT/L/.done" ] || { echo "run bench/index_bench.sh first to generate the trees" >&2; exit 1; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { sort -n | sed -n 2p; }

setup() {  # name tree -> fresh work dir with a copy of the tree, config, index
  rm -rf "$W/$1"; mkdir -p "$W/$1"
  cp -a "$OUT/$2" "$W/$1/vol"; rm -f "$W/$1/vol/.squirrel-volume" "$W/$1/vol/.done"
  printf 'db = "%s/index.db"\n[backups]\nenabled = false\n[volumes.v]\npath = "%s/vol"\nsync_to = ["d"]\noffload_requires = ["d"]\n[destinations.d]\ntype = "local"\nroot = "%s/dest"\n' \
    "$W/$1" "$W/$1" "$W/$1" > "$W/$1/config.toml"
  "$BIN" --config "$W/$1/config.toml" index v >/dev/null
}
sq() { local n=$1; shift; "$BIN" --config "$W/$n/config.toml" "$@" >/dev/null; }

time_sync() {  # tree -> median seconds of a first sync
  for _ in 1 2 3; do
    setup s "$1"; sync; local a; a=$(now); sq s sync v --init; local b; b=$(now); secs "$a" "$b"
  done | median
}
time_pipeline() {  # tree -> median seconds of cp -a + sync + b3sum of the copy
  for _ in 1 2 3; do
    rm -rf "$W/cp"; sync; local a; a=$(now)
    cp -a "$OUT/$1" "$W/cp" && sync && find "$W/cp" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null
    local b; b=$(now); secs "$a" "$b"
  done | median
}

tL=$(time_sync L); pL=$(time_pipeline L)
tS=$(time_sync S); pS=$(time_pipeline S)
setup r S; sq r sync v --init
tR=$(for _ in 1 2 3; do a=$(now); sq r sync v; b=$(now); secs "$a" "$b"; done | median)
rm -rf "$W/rs"; rsync -a "$OUT/S/" "$W/rs/"
pR=$(for _ in 1 2 3; do a=$(now); rsync -a "$OUT/S/" "$W/rs/"; b=$(now); secs "$a" "$b"; done | median)
tStatus=$(for _ in 1 2 3; do a=$(now); "$BIN" --config "$W/r/config.toml" status v >/dev/null || true; b=$(now); secs "$a" "$b"; done | median)
tO=$(for _ in 1 2 3; do setup o S; sq o sync v --init; sync; a=$(now); sq o offload v .; b=$(now); secs "$a" "$b"; done | median)
pO=$(for _ in 1 2 3; do rm -rf "$W/rm"; cp -a "$OUT/S" "$W/rm"; sync; a=$(now); find "$W/rm" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null; find "$W/rm" -type f -delete; b=$(now); secs "$a" "$b"; done | median)
setup l L; sq l sync v --init
tRe=$(for _ in 1 2 3; do rm -rf "$W/l/out"; sync; a=$(now); sq l restore v --to "$W/l/out"; b=$(now); secs "$a" "$b"; done | median)
pRe=$(for _ in 1 2 3; do rm -rf "$W/l/cpout"; sync; a=$(now); cp -a "$W/l/dest/v" "$W/l/cpout" && b3sum "$W"/l/cpout/*.bin >/dev/null; b=$(now); secs "$a" "$b"; done | median)

echo "squirrel loop benchmarks — $(date -u +%Y-%m-%d) — $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
printf '%-40s %9s %9s %7s %s\n' measurement squirrel baseline ratio target
printf '%-40s %8ss %8ss %7s %s\n' "sync L vs cp -a+sync+b3sum" "$tL" "$pL" "$(ratio "$tL" "$pL")" "<= 1.2"
printf '%-40s %8ss %8ss %7s %s\n' "sync S vs cp -a+sync+b3sum" "$tS" "$pS" "$(ratio "$tS" "$pS")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "unchanged re-sync S vs rsync -a" "$tR" "$pR" "$(ratio "$tR" "$pR")" "<= 0.5"
printf '%-40s %8ss %8ss %7s %s\n' "offload S vs b3sum+rm" "$tO" "$pO" "$(ratio "$tO" "$pO")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "restore L vs cp+b3sum" "$tRe" "$pRe" "$(ratio "$tRe" "$pRe")" "<= 1.3"
printf '%-40s %8ss %9s %7s %s\n' "status, 100k-file volume" "$tStatus" "-" "-" "< 0.1"
