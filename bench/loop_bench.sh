#!/usr/bin/env bash
# Sync, offload, restore and status benchmarks, side by side in one run with
# what a user would otherwise run. Uses the trees of bench/index_bench.sh
# (generated if missing). Every timing is the median of 3 runs, squirrel and
# its baseline run alternately.
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

# Deleting a tree and at once creating another costs the creator extra on
# ext4 (inode allocation steps around recently freed inodes for a few
# seconds), so every timed run starts after the deletions have settled,
# squirrel's and the baseline's alike.
settle() { sync; sleep 6; }
# Each comparison runs squirrel and its baseline alternately, 3 times each,
# so both see the same machine; the medians are kept in $W/t_<name>_{sq,base}.
interleave() {  # name squirrel-fn baseline-fn
  : > "$W/t_$1_sq"; : > "$W/t_$1_base"
  for _ in 1 2 3; do "$2" >> "$W/t_$1_sq"; "$3" >> "$W/t_$1_base"; done
}
med() { median < "$W/t_$1"; }

sync_run() {  # tree: a first sync into a fresh destination
  setup s "$TREE"; settle; local a; a=$(now); sq s sync v --init; local b; b=$(now); secs "$a" "$b"
}
pipeline_run() {  # tree: cp -a + sync + b3sum of the copy
  rm -rf "$W/cp"; settle; local a; a=$(now)
  cp -a "$OUT/$TREE" "$W/cp" && sync && find "$W/cp" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
TREE=L interleave syncL sync_run pipeline_run
TREE=S interleave syncS sync_run pipeline_run
tL=$(med syncL_sq); pL=$(med syncL_base); tS=$(med syncS_sq); pS=$(med syncS_base)

setup r S; sq r sync v --init
rm -rf "$W/rs"; rsync -a "$OUT/S/" "$W/rs/"
resync_run() { local a; a=$(now); sq r sync v; local b; b=$(now); secs "$a" "$b"; }
rsync_run() { local a; a=$(now); rsync -a "$OUT/S/" "$W/rs/"; local b; b=$(now); secs "$a" "$b"; }
interleave resync resync_run rsync_run
tR=$(med resync_sq); pR=$(med resync_base)
tStatus=$(for _ in 1 2 3; do a=$(now); "$BIN" --config "$W/r/config.toml" status v >/dev/null || true; b=$(now); secs "$a" "$b"; done | median)

offload_run() { setup o S; sq o sync v --init; settle; local a; a=$(now); sq o offload v .; local b; b=$(now); secs "$a" "$b"; }
rm_run() {
  rm -rf "$W/rm"; cp -a "$OUT/S" "$W/rm"; settle; local a; a=$(now)
  find "$W/rm" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null; find "$W/rm" -type f -delete
  local b; b=$(now); secs "$a" "$b"
}
interleave offload offload_run rm_run
tO=$(med offload_sq); pO=$(med offload_base)

setup l L; sq l sync v --init
restore_run() { rm -rf "$W/l/out"; settle; local a; a=$(now); sq l restore v --to "$W/l/out"; local b; b=$(now); secs "$a" "$b"; }
cp_run() {
  rm -rf "$W/l/cpout"; settle; local a; a=$(now)
  cp -a "$W/l/dest/v" "$W/l/cpout" && b3sum "$W"/l/cpout/*.bin >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
interleave restore restore_run cp_run
tRe=$(med restore_sq); pRe=$(med restore_base)

echo "squirrel loop benchmarks — $(date -u +%Y-%m-%d) — $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
printf '%-40s %9s %9s %7s %s\n' measurement squirrel baseline ratio target
printf '%-40s %8ss %8ss %7s %s\n' "sync L vs cp -a+sync+b3sum" "$tL" "$pL" "$(ratio "$tL" "$pL")" "<= 1.2"
printf '%-40s %8ss %8ss %7s %s\n' "sync S vs cp -a+sync+b3sum" "$tS" "$pS" "$(ratio "$tS" "$pS")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "unchanged re-sync S vs rsync -a" "$tR" "$pR" "$(ratio "$tR" "$pR")" "<= 0.5"
printf '%-40s %8ss %8ss %7s %s\n' "offload S vs b3sum+rm" "$tO" "$pO" "$(ratio "$tO" "$pO")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "restore L vs cp+b3sum" "$tRe" "$pRe" "$(ratio "$tRe" "$pRe")" "<= 1.3"
printf '%-40s %8ss %9s %7s %s\n' "status, 100k-file volume" "$tStatus" "-" "-" "< 0.1"
for n in syncL syncS resync offload restore; do
  echo "runs $n: squirrel $(tr '\n' ' ' < "$W/t_${n}_sq")| baseline $(tr '\n' ' ' < "$W/t_${n}_base")"
done
