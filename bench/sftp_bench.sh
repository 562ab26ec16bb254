#!/usr/bin/env bash
# SFTP mirror benchmarks, side by side in one run with what a user would
# otherwise run over the same ssh connection. The script starts its own
# OpenSSH sshd on 127.0.0.1 (a free port, its own host key, a fresh client
# key) and stops it at the end; client and server share this machine, so the
# figures measure squirrel's transport and bookkeeping, not a network.
#   first sync L        vs sftp -b "put -r"                      (throughput, target >= 0.8x)
#   first sync S        vs rsync -a -e ssh into a fresh dir      (target <= 1.5x)
#   unchanged re-sync S vs rsync -a of the unchanged tree        (target <= 0.5x)
#   restore S --to      vs sftp -b "get -r" + b3sum of every file (target <= 1.3x)
#   verify --full S     vs ssh "find | xargs b3sum" on the server   (no target: the
#                       check a user would otherwise run over the same login)
#   offload S           vs that ssh b3sum of every copy + rm -r of the local tree
#                       (no target; the files come back by restore --in-place
#                       and a sync, untimed, before the next run)
# Tree L: L_FILES files of L_MIB MiB (default 4 x 64). Trees S: one per size in
# S_SIZES (default "2000 20000"), 512 B-16 KiB files, 100 to a folder; the
# last column is the growth from the first size to the last, to see a cost
# growing faster than the number of files. Every timing is the median of
# RUNS (default 3) runs, squirrel and its baseline run alternately. Caches
# are warm: nothing is dropped from the page cache.
#   SQUIRREL=path/to/squirrel   the binary (default /work/main/build/squirrel)
#   S_SIZES="200 2000" L_FILES=2 L_MIB=16 RUNS=1   a quick check of the script
# The tenth session ran S_SIZES="300 3000" (11 minutes): a first sync cost
# about 30 ms per file there, so the default sizes take about 40 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${SQUIRREL:-/work/main/build/squirrel}"
[ -x "$BIN" ] || { echo "no squirrel binary at $BIN (set SQUIRREL=...)" >&2; exit 1; }
OUT="${BENCH_DIR:-$PWD/bench/out}"
W="$OUT/sftp"
L_FILES="${L_FILES:-4}"; L_MIB="${L_MIB:-64}"
S_SIZES=(${S_SIZES:-2000 20000})
RUNS="${RUNS:-3}"
for t in /usr/sbin/sshd ssh sftp ssh-keygen rsync b3sum bc python3; do
  command -v "$t" >/dev/null || { echo "$t is needed" >&2; exit 1; }
done
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
f3() { printf '%.3f' "$1"; }
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
rm -rf "$W"; mkdir -p "$W"

# --- sshd on loopback -------------------------------------------------------
S="$W/sshd"; mkdir -p "$S"; chmod 700 "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/userkey"
cp "$W/userkey.pub" "$S/authorized_keys"
[ "$(id -u)" = 0 ] && { mkdir -p /run/sshd; chmod 0755 /run/sshd; }  # sshd's privilege-separation dir
SSHD_PID=""
stop_sshd() {
  [ -n "$SSHD_PID" ] || return 0
  local kids; kids=$(pgrep -P "$SSHD_PID" || true)  # the per-connection sshd processes
  kill "$SSHD_PID" $kids 2>/dev/null || true
  wait "$SSHD_PID" 2>/dev/null || true
  SSHD_PID=""
}
trap stop_sshd EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
banner() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 7 <&3" 2>/dev/null; }
for attempt in 1 2 3 4 5; do  # another process may take the port between the probe and sshd's bind
  PORT=$(free_port)
  cat > "$S/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 100
MaxSessions 100
SetEnv SHLVL=1
EOF
  # SetEnv SHLVL=1: bash skips ~/.bashrc for a command sshd runs (root's costs 0.5 s here)
  rm -f "$S/sshd.pid"
  /usr/sbin/sshd -D -f "$S/sshd_config" -E "$S/sshd.log" </dev/null & SSHD_PID=$!
  ok=0
  for _ in $(seq 200); do  # up to ~20 s: the pid file appears once the port is bound
    kill -0 "$SSHD_PID" 2>/dev/null || break
    if [ "$(cat "$S/sshd.pid" 2>/dev/null)" = "$SSHD_PID" ] && [ "$(banner "$PORT")" = "SSH-2.0" ]; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] && break
  stop_sshd
  [ "$attempt" = 5 ] && { echo "sshd did not start:" >&2; cat "$S/sshd.log" >&2; exit 1; }
done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$S/host_key.pub")" > "$W/known_hosts"
# The baselines' ssh options. -F /dev/null: no ssh_config applies.
# KexAlgorithms: the key exchange libssh 0.10 negotiates (OpenSSH would pick
# sntrup761, slower per connection): the same handshake on both sides.
SSHOPT=(-F /dev/null -i "$W/userkey" -o IdentitiesOnly=yes -o UserKnownHostsFile="$W/known_hosts"
        -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes
        -o Compression=no -o KexAlgorithms=curve25519-sha256 -o Port="$PORT")
USER_NAME=$(whoami)
SFTP() { sftp -q "${SSHOPT[@]}" -b "$1" "$USER_NAME@127.0.0.1" >/dev/null; }
RSH="ssh ${SSHOPT[*]}"  # no spaces in $W: checked by sshd_config's paths working at all
RSYNC() { rsync -a -e "$RSH" "$1/" "$USER_NAME@127.0.0.1:$2/"; }
[ "$(ssh "${SSHOPT[@]}" "$USER_NAME@127.0.0.1" echo ok)" = ok ] || { echo "ssh login failed" >&2; exit 1; }

# --- trees, configs ----------------------------------------------------------
# timed <cmd...>: prints the wall seconds of a command that must succeed.
timed() {  # the command's output is kept in $W/last.txt
  local a b rc=0; a=$(now)
  "$@" >"$W/last.txt" 2>"$W/stderr.txt" || rc=$?
  b=$(now)
  [ $rc = 0 ] || { echo "failed ($rc): $*" >&2; cat "$W/stderr.txt" >&2; exit 1; }
  secs "$a" "$b"
}
setup() {  # name tree-dir: config, remote root and index of a volume
  local d="$W/$1"; mkdir -p "$d"
  cat > "$d/config.toml" <<EOF
db = "$d/index.db"
[backups]
enabled = false
[volumes.v]
path = "$2"
sync_to = ["nas"]
offload_requires = ["nas"]
[destinations.nas]
type = "sftp"
host = "127.0.0.1"
port = $PORT
user = "$USER_NAME"
root = "$d/remote"
key_file = "$W/userkey"
known_hosts_file = "$W/known_hosts"
EOF
  "$BIN" --config "$d/config.toml" index v >/dev/null
  cp "$d/index.db" "$d/index.db.indexed"  # every first sync starts from this
}
sq() { local n=$1; shift; "$BIN" --config "$W/$n/config.toml" "$@"; }
fresh_db() { rm -f "$W/$1/index.db-wal" "$W/$1/index.db-shm"; cp "$W/$1/index.db.indexed" "$W/$1/index.db"; }
# Every run starts with the written pages on disk, so no run pays for the
# previous one's writeback.
settle() { sync; sleep 2; }
interleave() {  # name squirrel-fn baseline-fn: medians kept in $W/t_<name>_{sq,base}
  : > "$W/t_$1_sq"; : > "$W/t_$1_base"
  for k in $(seq "$RUNS"); do RUN=$k "$2" >> "$W/t_$1_sq"; RUN=$k "$3" >> "$W/t_$1_base"; done
}
med() { median < "$W/t_$1"; }
runs() { echo "squirrel $(tr '\n' ' ' < "$W/t_$1_sq")| baseline $(tr '\n' ' ' < "$W/t_$1_base")"; }

# L as bench/index_bench.sh makes it (gen_tree.py's random pool, 4x the largest
# file, cannot be drawn for 64 MiB files).
mkdir -p "$W/L/d0000"
for i in $(seq -w 1 "$L_FILES"); do head -c $((L_MIB << 20)) /dev/urandom > "$W/L/d0000/big$i.bin"; done
L_BYTES=$((L_FILES * L_MIB << 20))
setup l "$W/L"

# --- L: first sync vs sftp put -r -------------------------------------------
syncL() { rm -rf "$W/l/remote"; fresh_db l; settle; timed sq l sync v --to nas --init; }
putL() {
  rm -rf "$W/putL"; printf 'put -r %s %s\n' "$W/L" "$W/putL" > "$W/put.batch"; settle
  timed SFTP "$W/put.batch"
}
interleave syncL syncL putL
cmp -s <(cd "$W/L" && b3sum d*/*.bin) <(cd "$W/l/remote/v" && b3sum d*/*.bin) ||
  { echo "the synced copies of L differ from the files" >&2; exit 1; }
rm -rf "$W/putL"

# --- S: first sync vs rsync, re-sync vs rsync, restore vs sftp get + b3sum --
for n in "${S_SIZES[@]}"; do
  python3 bench/gen_tree.py "$W/S$n" "$n" $(( (n + 99) / 100 )) 512 16384
  setup "s$n" "$W/S$n"
  syncS() { rm -rf "$W/s$N/remote"; fresh_db "s$N"; settle; timed sq "s$N" sync v --to nas --init; }
  rsyncS() { rm -rf "$W/rsync$N"; settle; timed RSYNC "$W/S$N" "$W/rsync$N"; }
  resyncS() { settle; timed sq "s$N" sync v --to nas; }
  rerunS() { settle; timed RSYNC "$W/S$N" "$W/rsync$N"; }
  restoreS() { rm -rf "$W/restore$N"; settle; timed sq "s$N" restore v --from nas --to "$W/restore$N"; }
  getS() {  # fetch the mirror squirrel wrote, then hash every fetched file
    rm -rf "$W/get$N"; printf 'get -r %s %s\n' "$W/s$N/remote/v" "$W/get$N" > "$W/get.batch"; settle
    local a b; a=$(now)
    SFTP "$W/get.batch" && find "$W/get$N" -type f -print0 | xargs -0 -n 1000 b3sum >/dev/null
    b=$(now); secs "$a" "$b"
  }
  N=$n interleave "sync$n" syncS rsyncS
  N=$n interleave "resync$n" resyncS rerunS
  N=$n interleave "restore$n" restoreS getS
  verifyS() { settle; timed sq "s$N" verify nas --full; }
  sum_copies() { ssh "${SSHOPT[@]}" "$USER_NAME@127.0.0.1" "cd '$W/s$N/remote/v' && find . -type f ! -path './.squirrel-*' -print0 | LC_ALL=C xargs -0 b3sum --"; }
  sumS() { settle; timed sum_copies; }
  N=$n interleave "verify$n" verifyS sumS
  offloadS() {  # every file must go, else the figure is of a refusal
    settle; local t; t=$(timed sq "s$N" offload v . --json)
    grep -q "\"offloaded\": *$N\b" "$W/last.txt" || { echo "offload of S$N did not offload every file:" >&2; cat "$W/last.txt" >&2; exit 1; }
    sq "s$N" restore v --from nas --in-place >/dev/null
    sq "s$N" sync v --to nas >/dev/null  # the restored files are pushed again before the next offload
    echo "$t"
  }
  rmS() {
    rm -rf "$W/gone$N"; cp -a "$W/S$N" "$W/gone$N"; settle
    local a b; a=$(now); sum_copies >/dev/null && rm -rf "$W/gone$N"; b=$(now); secs "$a" "$b"
  }
  N=$n interleave "offload$n" offloadS rmS
  diff -rq -x .squirrel-volume "$W/S$n" "$W/restore$n" >/dev/null ||
    { echo "restore of S$n differs from the files" >&2; exit 1; }
  rm -rf "$W/rsync$n" "$W/get$n" "$W/restore$n"
done

# --- report -------------------------------------------------------------------
tp() { printf '%.1f' "$(echo "scale=3; $L_BYTES / $1 / 1048576" | bc)"; }
first=${S_SIZES[0]}; last=${S_SIZES[${#S_SIZES[@]}-1]}
echo "squirrel SFTP benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC') — $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
echo "$($BIN --version 2>/dev/null | head -1); OpenSSH $(ssh -V 2>&1 | cut -d' ' -f1 | cut -d_ -f2) sshd on 127.0.0.1:$PORT (client and server on this machine); median of $RUNS; warm caches, nothing dropped"
sqL=$(med syncL_sq); puL=$(med syncL_base)
printf '%-44s %10s %10s %7s %s\n' measurement squirrel baseline ratio target
printf '%-44s %5s MiB/s %5s MiB/s %7s %s\n' "first sync L (${L_FILES}x${L_MIB} MiB) vs sftp put -r" \
  "$(tp "$sqL")" "$(tp "$puL")" "$(ratio "$(tp "$sqL")" "$(tp "$puL")")" ">= 0.8 (throughput)"
row() {  # label name target
  local q b; q=$(med "$2_sq"); b=$(med "$2_base")
  printf '%-44s %9ss %9ss %7s %s\n' "$1" "$(f3 "$q")" "$(f3 "$b")" "$(ratio "$q" "$b")" "$3"
}
for n in "${S_SIZES[@]}"; do
  row "first sync S$n vs rsync -a" "sync$n" "<= 1.5"
  row "unchanged re-sync S$n vs rsync -a again" "resync$n" "<= 0.5"
  row "restore S$n --to vs sftp get -r + b3sum" "restore$n" "<= 1.3"
  row "verify --full S$n vs ssh find | xargs b3sum" "verify$n" "-"
  row "offload S$n vs ssh b3sum + rm -r" "offload$n" "-"
done
if [ "$first" != "$last" ]; then
  g() { printf '%.1f' "$(echo "scale=3; $(med "$1${last}_$2") / $(med "$1${first}_$2")" | bc)"; }
  echo "growth from $first to $last files ($(( last / first ))x the files): squirrel / baseline"
  for c in sync resync restore verify offload; do printf '  %-10s %5sx %5sx\n' "$c" "$(g $c sq)" "$(g $c base)"; done
fi
echo "runs syncL: $(runs syncL)"
for n in "${S_SIZES[@]}"; do for c in sync resync restore verify offload; do echo "runs $c$n: $(runs "$c$n")"; done; done
stop_sshd
rm -rf "$W"
