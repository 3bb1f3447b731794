#!/usr/bin/env bash
# The README's second command: installs what is missing, builds everything with warnings as
# errors, and runs every test through ctest. Extra arguments go to ctest (e.g. -R lease).
# TENDED_TEST_FUZZ=1 also runs each libFuzzer target for 5 s (scripts/fuzz.sh): off by
# default, as the clang build it needs takes longer than the rest (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENDED_BUILD_TESTS=ON >/dev/null
ninja -C build
(cd build && ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@")
if [[ "${TENDED_TEST_FUZZ:-0}" == 1 ]]; then
  scripts/fuzz.sh 5
fi
