#!/usr/bin/env bash
# Installs what is missing, builds, and runs squirrel end to end on a small
# sample volume and a local destination in a temporary directory. Nothing
# outside that directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
SQUIRREL_TARGETS=squirrel bash scripts/build.sh build
BIN="$PWD/build/squirrel"
DEMO="$(mktemp -d "${TMPDIR:-/tmp}/squirrel-demo-XXXXXX")"
trap 'rm -rf "$DEMO"' EXIT
mkdir -p "$DEMO/photos/2024/trip" "$DEMO/photos/2025" "$DEMO/usb"
for i in $(seq 1 20); do head -c $((i * 1024)) /dev/urandom > "$DEMO/photos/2024/trip/img_$i.jpg"; done
for i in $(seq 1 5); do head -c 4096 /dev/urandom > "$DEMO/photos/2025/scan_$i.png"; done
cp "$DEMO/photos/2024/trip/img_3.jpg" "$DEMO/photos/2025/copy_of_img_3.jpg"
cat > "$DEMO/config.toml" <<TOML
db = "$DEMO/index.db"

[volumes.photos]
path = "$DEMO/photos"
sync_to = ["usb"]
offload_requires = ["usb"]

[destinations.usb]
type = "local"
root = "$DEMO/usb"
TOML
sq() { echo; echo "\$ squirrel $*"; "$BIN" --config "$DEMO/config.toml" "$@"; }
sq config check
sq index photos
echo "a new photo" > "$DEMO/photos/2025/new.jpg"
rm "$DEMO/photos/2025/scan_5.png"
sq index photos --dry-run
sq index photos
sq sync photos || true   # refused: the first sync needs --init (an unmounted disk must never look new)
sq sync photos --init
sq sync photos           # nothing changed: transfers nothing
echo "edited" >> "$DEMO/photos/2025/new.jpg"
sq index photos
sq sync photos           # the old bytes move to .squirrel-history, never overwritten
sq verify usb --full
sq status photos || true  # 0 green, 1 amber, 2 red
sq offload photos 2024 --dry-run
sq offload photos 2024   # frees space: every copy proven, bytes re-checked before each unlink
echo "\$ ls photos/2024/trip | wc -l  ->  $(ls "$DEMO/photos/2024/trip" | wc -l) files left locally"
sq index photos          # offloaded files are expected to be absent: nothing is flagged missing
sq restore photos 2024/trip/img_3.jpg
sq restore photos        # the rest, hashed while streamed, renamed into place
cmp "$DEMO/photos/2024/trip/img_3.jpg" "$DEMO/photos/2025/copy_of_img_3.jpg" && echo "restored bytes are identical"
sq query "$DEMO/photos/2025/copy_of_img_3.jpg"
sq query --duplicates
sq query --missing
sq audit photos --deep
sq audit photos --folders
sq runs
sq volumes
echo; echo "\$ find usb -type f (the destination)"; (cd "$DEMO" && find usb -type f | grep -v '/index-' | sort)
echo
echo "demo finished in $DEMO (removed on exit)"
