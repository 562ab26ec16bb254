#!/usr/bin/env bash
# Sync, offload, restore and status benchmarks, side by side in one run with
# what a user would otherwise run. Uses the trees of bench/index_bench.sh
# (generated if missing). Every timing is the median of 3 runs, squirrel and
# its baseline run alternately.
#   sync L        vs cp -a + sync + b3sum of the copy      (target <= 1.2x)
#   sync S        vs the same pipeline                     (target <= 1.5x)
#   re-sync S     vs rsync -a of the unchanged tree        (target <= 0.5x)
#   offload S     vs b3sum of the files and their copies + rm (target <= 1.5x)
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

# Leftovers of an earlier bench run are deleted first, then the disk gets
# a minute: ext4 steers inode allocation around recently freed inodes, which
# slows whoever creates files next.
if [ -d "$W" ]; then rm -rf "$W"; sync; sleep 60; fi
mkdir -p "$W"

config() {  # name volume-path -> a config whose index is $W/<name>/index.db
  mkdir -p "$W/$1"
  printf 'db = "%s/index.db"\n[backups]\nenabled = false\n[volumes.v]\npath = "%s"\nsync_to = ["d"]\noffload_requires = ["d"]\n[destinations.d]\ntype = "local"\nroot = "%s/dest"\n' \
    "$W/$1" "$2" "$W/$1" > "$W/$1/config.toml"
}
setup() {  # name tree -> fresh work dir with a copy of the tree, config, index
  config "$1" "$W/$1/vol"
  cp -a "$OUT/$2" "$W/$1/vol"; rm -f "$W/$1/vol/.squirrel-volume" "$W/$1/vol/.done"
  "$BIN" --config "$W/$1/config.toml" index v >/dev/null
}
sq() { local n=$1; shift; "$BIN" --config "$W/$n/config.toml" "$@" >/dev/null; }

settle() { sync; sleep 6; }
# Each comparison runs squirrel and its baseline alternately, 3 times each,
# so both see the same machine; the medians are kept in $W/t_<name>_{sq,base}.
interleave() {  # name squirrel-fn baseline-fn
  : > "$W/t_$1_sq"; : > "$W/t_$1_base"
  for k in 1 2 3; do RUN=$k "$2" >> "$W/t_$1_sq"; RUN=$k "$3" >> "$W/t_$1_base"; done
}
med() { median < "$W/t_$1"; }

# The sync comparisons delete nothing until they are done: every squirrel
# run syncs a volume of its own (the tree, copied once per tree and indexed
# once) into a new destination, every baseline copies into a new directory.
prepare_sync() {  # tree: the volume every sync of it reads, indexed once
  config "idx$TREE" "$W/src$TREE"
  cp -a "$OUT/$TREE" "$W/src$TREE"; rm -f "$W/src$TREE/.squirrel-volume" "$W/src$TREE/.done"
  sq "idx$TREE" index v
}
sync_run() {  # tree: a first sync into a fresh destination
  local n="sync$TREE$RUN"
  config "$n" "$W/src$TREE"; cp "$W/idx$TREE/index.db" "$W/$n/index.db"; settle
  local a; a=$(now); sq "$n" sync v --init; local b; b=$(now); secs "$a" "$b"
}
pipeline_run() {  # tree: cp -a + sync + b3sum of the copy
  local d="$W/cp$TREE$RUN"; settle; local a; a=$(now)
  cp -a "$OUT/$TREE" "$d" && sync && find "$d" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
TREE=L prepare_sync; TREE=S prepare_sync
TREE=L interleave syncL sync_run pipeline_run
TREE=S interleave syncS sync_run pipeline_run
tL=$(med syncL_sq); pL=$(med syncL_base); tS=$(med syncS_sq); pS=$(med syncS_base)
rm -rf "$W"/sync?? "$W"/cp?? "$W"/src? "$W"/idx?; sync  # what follows creates few files

setup r S; sq r sync v --init
rm -rf "$W/rs"; rsync -a "$OUT/S/" "$W/rs/"
resync_run() { local a; a=$(now); sq r sync v; local b; b=$(now); secs "$a" "$b"; }
rsync_run() { local a; a=$(now); rsync -a "$OUT/S/" "$W/rs/"; local b; b=$(now); secs "$a" "$b"; }
interleave resync resync_run rsync_run
tR=$(med resync_sq); pR=$(med resync_base)
tStatus=$(for _ in 1 2 3; do a=$(now); "$BIN" --config "$W/r/config.toml" status v >/dev/null || true; b=$(now); secs "$a" "$b"; done | median)

offload_run() { setup "o$RUN" S; sq "o$RUN" sync v --init; settle; local a; a=$(now); sq "o$RUN" offload v .; local b; b=$(now); secs "$a" "$b"; }
# What a careful person does by hand before deleting: hash the file and its
# backup copy, then remove the file (offload re-hashes both, since issue 12).
rm_run() {
  local d="$W/rm$RUN"; cp -a "$OUT/S" "$d"; cp -a "$OUT/S" "$d.copy"; settle; local a; a=$(now)
  find "$d" "$d.copy" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null; find "$d" -type f -delete
  local b; b=$(now); secs "$a" "$b"
}
interleave offload offload_run rm_run
tO=$(med offload_sq); pO=$(med offload_base)

setup l L; sq l sync v --init
restore_run() { settle; local a; a=$(now); sq l restore v --to "$W/l/out$RUN"; local b; b=$(now); secs "$a" "$b"; }
cp_run() {
  local d="$W/l/cpout$RUN"; settle; local a; a=$(now)
  cp -a "$W/l/dest/v" "$d" && b3sum "$d"/*.bin >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
interleave restore restore_run cp_run
tRe=$(med restore_sq); pRe=$(med restore_base)

echo "squirrel loop benchmarks — $(date -u +%Y-%m-%d) — $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
printf '%-40s %9s %9s %7s %s\n' measurement squirrel baseline ratio target
printf '%-40s %8ss %8ss %7s %s\n' "sync L vs cp -a+sync+b3sum" "$tL" "$pL" "$(ratio "$tL" "$pL")" "<= 1.2"
printf '%-40s %8ss %8ss %7s %s\n' "sync S vs cp -a+sync+b3sum" "$tS" "$pS" "$(ratio "$tS" "$pS")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "unchanged re-sync S vs rsync -a" "$tR" "$pR" "$(ratio "$tR" "$pR")" "<= 0.5"
printf '%-40s %8ss %8ss %7s %s\n' "offload S vs b3sum x2+rm" "$tO" "$pO" "$(ratio "$tO" "$pO")" "<= 1.5"
printf '%-40s %8ss %8ss %7s %s\n' "restore L vs cp+b3sum" "$tRe" "$pRe" "$(ratio "$tRe" "$pRe")" "<= 1.3"
printf '%-40s %8ss %9s %7s %s\n' "status, 100k-file volume" "$tStatus" "-" "-" "< 0.1"
for n in syncL syncS resync offload restore; do
  echo "runs $n: squirrel $(tr '\n' ' ' < "$W/t_${n}_sq")| baseline $(tr '\n' ' ' < "$W/t_${n}_base")"
done
rm -rf "$W"  # the trees copied for the runs (tens of GiB); the source trees stay
