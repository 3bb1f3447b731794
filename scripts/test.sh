#!/usr/bin/env bash
# The README's second command: installs what is missing, builds everything with warnings as
# errors, and runs every test through ctest. Extra arguments go to ctest (e.g. -R lease).
# CI (.ci/run) then runs scripts/sanitize.sh: the suite under the sanitizers and the fuzz
# targets (docs/sanitizers.md).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENDED_BUILD_TESTS=ON >/dev/null
ninja -C build
# Two tests per core: most of them wait on processes, sockets and files rather than compute
# (on 2 cores the suite takes 165 s so and 316 s with one per core; docs/sanitizers.md).
(cd build && ctest --output-on-failure --timeout 600 -j "$((2 * $(nproc)))" "$@")
