#!/usr/bin/env bash
# The content-addressed and packed layouts on a local disk, side by side in
# one run with what a user would otherwise run. Trees (generated if missing,
# shared with bench/index_bench.sh): S10k (10,000 small files), S (100,000
# small files), L (16 files of 64 MiB).
#   first sync, content-addressed  vs cp -a + sync + b3sum of the copy     (target L <= 1.2x)
#   restore from the objects       vs cp -a + sync + b3sum of the copy
#   first sync, packed (zstd_level 2 = zstd -3)
#                                  vs tar | zstd -3 + sync + b3sum of it  (target S <= 1.5x)
#   restore from the packs         vs zstd -d | tar -x + sync              (target S <= 1.5x)
# The objects and packs written and the bytes they take are printed beside them.
# RUNS (default 1) runs of each, squirrel and baseline alternately; the
# median is kept. Usage: bench/content_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# SQUIRREL: a binary to measure instead of this tree's build.
if [ -z "${SQUIRREL:-}" ]; then bash scripts/build.sh build >/dev/null; fi
BIN="${SQUIRREL:-$PWD/build/squirrel}"
OUT="${BENCH_DIR:-$PWD/bench/out}"
W="$OUT/content"
RUNS="${RUNS:-1}"
mkdir -p "$OUT"
gen() {  # dir files dirs min max
  [ -f "$1/.done" ] && return
  rm -rf "$1"; mkdir -p "$1"
  python3 bench/gen_tree.py "$1" "$2" "$3" "$4" "$5"
  touch "$1/.done"
}
gen "$OUT/S" 100000 200 512 16384
gen "$OUT/S10k" 10000 200 512 16384
if [ ! -f "$OUT/L/.done" ]; then
  rm -rf "$OUT/L"; mkdir -p "$OUT/L"
  for i in $(seq -w 1 16); do head -c $((64 << 20)) /dev/urandom > "$OUT/L/big$i.bin"; done
  touch "$OUT/L/.done"
fi
rm -rf "$W"; mkdir -p "$W"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
settle() { sync; sleep 3; }

LAYOUT='layout = "content-addressed"'
config() {  # work-dir volume-path
  mkdir -p "$1"
  printf 'db = "%s/index.db"\n[backups]\nenabled = false\n[volumes.v]\npath = "%s"\nsync_to = ["d"]\n[destinations.d]\ntype = "local"\n%s\nroot = "%s/dest"\n' \
    "$1" "$2" "$LAYOUT" "$1" > "$1/config.toml"
}
sq() { local d=$1; shift; "$BIN" --config "$d/config.toml" "$@" >/dev/null; }

# A tree indexed once; each squirrel run syncs it into a new destination.
prepare() {  # tree
  cp -a "$OUT/$1" "$W/src$1"; rm -f "$W/src$1/.squirrel-volume" "$W/src$1/.done"
  config "$W/idx$1" "$W/src$1"; sq "$W/idx$1" index v
}
push_run() {  # tree run
  local d="$W/push$1$2"; config "$d" "$W/src$1"; cp "$W/idx$1/index.db" "$d/index.db"; settle
  local a; a=$(now); sq "$d" sync v --init; local b; b=$(now); secs "$a" "$b"
}
pipeline_run() {  # tree run: cp -a + sync + b3sum of the copy
  local d="$W/cp$1$2"; settle; local a; a=$(now)
  cp -a "$W/src$1" "$d" && sync && find "$d" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
restore_run() {  # tree run: from the first push's objects into a new folder
  local to="$W/out$1$2"; settle; local a; a=$(now); sq "$W/push${1}1" restore v --to "$to"; local b; b=$(now)
  secs "$a" "$b"
}
row() {  # label squirrel-fn baseline-fn tree
  : > "$W/t_sq"; : > "$W/t_base"
  for k in $(seq 1 "$RUNS"); do "$2" "$4" "$k" >> "$W/t_sq"; "$3" "$4" "$k" >> "$W/t_base"; done
  local s b; s=$(median < "$W/t_sq"); b=$(median < "$W/t_base")
  printf '%-34s %9.2f s %9.2f s %7sx\n' "$1" "$s" "$b" "$(ratio "$s" "$b")"
}
stored() {  # tree: objects, packs and bytes of the first push's destination
  local d="$W/push${1}1/dest" n p b
  n=0; p=0
  [ -d "$d/objects" ] && n=$(find "$d/objects" -type f | wc -l)
  [ -d "$d/packs" ] && p=$(find "$d/packs" -type f -not -name 'map-*' | wc -l)
  b=$(du -sb "$d" | cut -f1)
  printf '%-34s %d objects, %d packs, %s bytes (source %s bytes)\n' "  stored ($1)" "$n" "$p" "$b" \
    "$(du -sb --exclude=.squirrel-volume "$W/src$1" | cut -f1)"
}
tarzstd_run() {  # tree run: tar | zstd -3 into one file, synced, then its b3sum
  local f="$W/tz$1$2.tar.zst"; settle; local a; a=$(now)
  tar -cf - -C "$W/src$1" . | zstd -3 -q -T1 > "$f" && sync && b3sum "$f" >/dev/null
  local b; b=$(now); secs "$a" "$b"
}
untar_run() {  # tree run: zstd -d | tar -x of the first baseline's file, synced
  local to="$W/ut$1$2"; mkdir -p "$to"; settle; local a; a=$(now)
  zstd -dq < "$W/tz${1}1.tar.zst" | tar -xf - -C "$to" && sync
  local b; b=$(now); secs "$a" "$b"
}

echo "squirrel content-addressed bench — $(date -u +%Y-%m-%dT%H:%MZ) — $(nproc) cores, $(uname -r)"
printf '%-34s %11s %11s %8s\n' "measurement" "squirrel" "baseline" "ratio"
for T in L S10k S; do
  prepare "$T"
  row "first sync $T vs cp+sync+b3sum" push_run pipeline_run "$T"
  stored "$T"
  rm -rf "$W"/cp"$T"*
  row "restore $T vs cp+sync+b3sum" restore_run pipeline_run "$T"
  rm -rf "$W"/push"$T"* "$W"/cp"$T"* "$W"/out"$T"*; sync
  if [ "$T" != L ]; then
    LAYOUT=$'layout = "packed"\nzstd_level = 2'
    row "packed sync $T vs tar|zstd -3+b3sum" push_run tarzstd_run "$T"
    stored "$T"
    row "restore $T from packs vs zstd -d|tar" restore_run untar_run "$T"
    LAYOUT='layout = "content-addressed"'
  fi
  rm -rf "$W"/push"$T"* "$W"/tz"$T"* "$W"/ut"$T"* "$W"/out"$T"* "$W"/src"$T" "$W"/idx"$T"; sync
done
