#!/usr/bin/env bash
# Index benchmarks, measured side by side in one run against what a user
# would otherwise run (b3sum over find, find -printf). Prints a table with the
# machine and date. Usage: bench/index_bench.sh [--million]
#   tree S: 100,000 files of 0.5-16 KiB in 200 directories
#   tree L: 16 files of 64 MiB
# Every timing is the median of 3 runs on a warm page cache; the first index
# and its b3sum baseline run alternately.
set -euo pipefail
cd "$(dirname "$0")/.."
MILLION=0; [ "${1:-}" = "--million" ] && MILLION=1
bash scripts/build.sh build >/dev/null
BIN="$PWD/build/squirrel"
OUT="${BENCH_DIR:-$PWD/bench/out}"
CORES=$(nproc)
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
[ $MILLION = 1 ] && gen "$OUT/S1M" 1000000 2000 512 16384

config_for() {  # name path -> config file
  printf 'db = "%s/%s.db"\n[volumes.%s]\npath = "%s"\n' "$OUT" "$1" "$1" "$2" > "$OUT/$1.toml"
  echo "$OUT/$1.toml"
}
fresh() { rm -f "$OUT/$1.db" "$OUT/$1.db-wal" "$OUT/$1.db-shm" "$2/.squirrel-volume"; }
now() { date +%s.%N; }
# median wall seconds of 3 runs of "$@"; $PREP runs before each
median3() {
  local t=()
  for _ in 1 2 3; do
    ${PREP:-true}
    local a; a=$(now); "$@" >/dev/null 2>&1; local b; b=$(now)
    t+=("$(echo "$b - $a" | bc)")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 2p
}
peak_rss_mib() {  # runs "$@" once, prints max RSS in MiB
  /usr/bin/time -f '%M' -o "$OUT/rss.txt" "$@" >/dev/null 2>&1
  echo "scale=1; $(cat "$OUT/rss.txt") / 1024" | bc
}
ratio() { echo "scale=2; $1 / $2" | bc; }

find "$OUT/S" "$OUT/L" -type f -print0 | xargs -0 cat > /dev/null  # warm the cache

CS=$(config_for S "$OUT/S")
# The first index and its baseline alternate, so both see the same disk.
first=(); b3s=()
for _ in 1 2 3; do
  fresh S "$OUT/S"; a=$(now); "$BIN" --config "$CS" index S >/dev/null 2>&1; b=$(now); first+=("$(echo "$b - $a" | bc)")
  a=$(now); find "$OUT/S" -type f -print0 | xargs -0 -P"$CORES" b3sum >/dev/null; b=$(now)
  b3s+=("$(echo "$b - $a" | bc)")
done
printf '%s\n' "${first[@]}" | sort -n | sed -n 2p > "$OUT/t_first"
printf '%s\n' "${b3s[@]}" | sort -n | sed -n 2p > "$OUT/t_b3s"
"$BIN" --config "$CS" index S >/dev/null
median3 "$BIN" --config "$CS" index S --shallow > "$OUT/t_shallow"
median3 sh -c "find '$OUT/S' -type f -printf '%s %T@ %p\n'" > "$OUT/t_find"

CL=$(config_for L "$OUT/L")
PREP="fresh L $OUT/L" median3 "$BIN" --config "$CL" index L > "$OUT/t_L"
median3 sh -c "b3sum '$OUT'/L/*.bin" > "$OUT/t_b3L"

C10=$(config_for S10k "$OUT/S10k"); fresh S10k "$OUT/S10k"; rss10=$(peak_rss_mib "$BIN" --config "$C10" index S10k)
fresh S "$OUT/S"; rss100=$(peak_rss_mib "$BIN" --config "$CS" index S)
rss1m="not run (pass --million)"
if [ $MILLION = 1 ]; then
  C1M=$(config_for S1M "$OUT/S1M"); fresh S1M "$OUT/S1M"
  find "$OUT/S1M" -type f -print0 | xargs -0 cat > /dev/null  # warm the cache
  a=$(now); "$BIN" --config "$C1M" index S1M >/dev/null 2>&1; b=$(now); t1m=$(echo "$b - $a" | bc)
  a=$(now); find "$OUT/S1M" -type f -print0 | xargs -0 -P"$CORES" b3sum >/dev/null; b=$(now); b1m=$(echo "$b - $a" | bc)
  fresh S1M "$OUT/S1M"; rss1m="$(peak_rss_mib "$BIN" --config "$C1M" index S1M) MiB"
fi

L_BYTES=$((16 * 64 * 1024 * 1024))
echo "squirrel index benchmarks — $(date -u +%Y-%m-%d) — $(lscpu | sed -n 's/^Model name: *//p'), $CORES cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
printf '%-44s %10s %10s %8s %s\n' "measurement" "squirrel" "baseline" "ratio" "target"
printf '%-44s %9ss %9ss %8s %s\n' "first index S vs find|xargs -P$CORES b3sum" "$(cat "$OUT/t_first")" "$(cat "$OUT/t_b3s")" "$(ratio "$(cat "$OUT/t_first")" "$(cat "$OUT/t_b3s")")" "<= 1.5"
printf '%-44s %9ss %9ss %8s %s\n' "shallow re-index S vs find -printf" "$(cat "$OUT/t_shallow")" "$(cat "$OUT/t_find")" "$(ratio "$(cat "$OUT/t_shallow")" "$(cat "$OUT/t_find")")" "<= 3"
sq_tp=$(echo "scale=0; $L_BYTES / $(cat "$OUT/t_L") / 1048576" | bc); b3_tp=$(echo "scale=0; $L_BYTES / $(cat "$OUT/t_b3L") / 1048576" | bc)
printf '%-44s %7sMB/s %7sMB/s %8s %s\n' "index L throughput vs b3sum (MiB/s)" "$sq_tp" "$b3_tp" "$(ratio "$sq_tp" "$b3_tp")" ">= 0.85"
[ $MILLION = 1 ] && printf '%-44s %9ss %9ss %8s %s\n' "first index 1M vs find|xargs -P$CORES b3sum" "$t1m" "$b1m" "$(ratio "$t1m" "$b1m")" "(one run each)"
printf '%-44s %s MiB\n' "peak RSS, first index of 10k files" "$rss10"
printf '%-44s %s MiB (target <= 100)\n' "peak RSS, first index of 100k files" "$rss100"
printf '%-44s %s\n' "peak RSS, first index of 1M files" "$rss1m"
echo "runs first index S: squirrel ${first[*]} | baseline ${b3s[*]}"
