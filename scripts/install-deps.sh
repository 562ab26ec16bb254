#!/usr/bin/env bash
# Installs the Debian 12 packages squirrel needs to build, test and benchmark.
# Only packages that are missing are installed, so a second run is a no-op.
set -euo pipefail
PKGS=(build-essential cmake ninja-build g++ clang pkg-config
      libsqlite3-dev sqlite3 libtomlplusplus-dev libcli11-dev libfmt-dev
      nlohmann-json3-dev libgtest-dev libgmock-dev librapidcheck-dev
      librust-blake3-dev b3sum rsync bc time python3 go-md2man
      libssh-dev openssh-server openssh-client
      libarchive-dev libzstd-dev zstd tar)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
