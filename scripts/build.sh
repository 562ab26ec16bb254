#!/usr/bin/env bash
# Configures and builds squirrel into build/ (or $1) with the given extra CMake args.
# SQUIRREL_TARGETS (default: everything) names the ninja targets to build;
# the demo builds only the binary, not the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"; shift || true
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# shellcheck disable=SC2086 # a list of target names
ninja -C "$dir" -j"$(nproc)" ${SQUIRREL_TARGETS:-}
