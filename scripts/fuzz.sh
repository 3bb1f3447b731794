#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (in build-fuzz, TENDED_FUZZ=ON) and
# runs each on a scratch copy of its seed corpus for SECONDS (default 10), printing
# libFuzzer's figures: executions, coverage (edges), features, and the corpus it grew. Fails
# on any crash, sanitizer report, leak, timeout or broken invariant; the input that did it
# is kept under build-fuzz/fuzz-findings/<target>/. docs/fuzzing.md explains.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 60 journal_record
# TENDED_FUZZ_BUILD names another TENDED_FUZZ build folder (scripts/sanitize.sh: build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
build="${TENDED_FUZZ_BUILD:-build-fuzz}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz: needs clang with libFuzzer (Debian: apt-get install clang)" >&2
  exit 1
fi
if [[ ! -f "$build/build.ninja" ]]; then
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTENDED_FUZZ=ON -DTENDED_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
fi

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for source in tests/fuzz/*_fuzz.cc; do
    name="$(basename "$source" .cc)"
    targets+=("${name%_fuzz}")
  done
fi
ninja -C "$build" "${targets[@]/%/_fuzz}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
findings="$build/fuzz-findings"
failed=()
printf '%-26s %10s %8s %8s %8s %8s\n' target executions exec/s cov ft corpus
for target in "${targets[@]}"; do
  mkdir -p "$work/$target" "$findings/$target"
  cp tests/fuzz/corpus/"$target"/* "$work/$target/"
  log="$work/$target.log"
  status=0
  "$build/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 \
    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$findings/$target/" \
    "$work/$target" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  last="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corpus="$(find "$work/$target" -type f | wc -l)"
  printf '%-26s %10s %8s %8s %8s %8s\n' "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "$corpus"
  if [[ $status -ne 0 ]]; then
    failed+=("$target")
    cp "$log" "$findings/$target/fuzz.log"
    grep -E 'ERROR|FUZZ_CHECK|runtime error|Test unit written' "$log" | head -n 5 >&2 || true
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in ${failed[*]} (inputs and logs in $findings/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no findings"
