#!/usr/bin/env bash
# The sanitizer runs CI makes after the plain suite (.ci/run; docs/sanitizers.md):
#   asan  clang with AddressSanitizer, UndefinedBehaviorSanitizer (and LeakSanitizer) and
#         libFuzzer's coverage, in build-asan: every test through ctest, the demos included
#         (the packaging tests check the plain build only), then each libFuzzer target of tests/fuzz for
#         TENDED_FUZZ_SECONDS (default 5) on its seeds, from the same build.
#   tsan  clang with ThreadSanitizer, in build-tsan: the test programs of the concurrent parts
#         (coordinator core, state journal, notifier, gRPC streams, agent), each to the end.
# Any sanitizer report fails the run. Arguments choose the stages (default: asan tsan).
set -euo pipefail
cd "$(dirname "$0")/.."

stages=("$@")
if [[ ${#stages[@]} -eq 0 ]]; then stages=(asan tsan); fi
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
jobs="$(nproc)"

# halt_on_error: the first report ends the program, so no report hides behind a passing test.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp"

# The concurrent parts: test programs of tests/{unit,integration} run whole under TSan.
tsan_tests=(
  coordinator_test durable_answers_test hostile_input_test identity_test k8s_rollout_test
  lease_protocol_test os_rollout_test os_upgrade_test recovery_test
  journal_test journal_recovery_test ledger_test
  notifier_test alert_poller_test
  coordinator_server_test fleet_grpc_test kube_flow_grpc_test
  agent_test agent_reboot_test agent_os_upgrade_test agent_k8s_upgrade_test
  lease_requester_test sentinel_watcher_test service_notifier_test agent_metrics_test
  http_metrics_server_test metrics_test
)

# clang, the tests, line tables only (stacks keep their lines), the optimisation level, and
# the stage's own options.
configure() {
  local dir="$1" level="$2"
  shift 2
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$level -gline-tables-only -DNDEBUG" \
    -DTENDED_BUILD_TESTS=ON "${launcher[@]}" "$@" >/dev/null
}

run_asan() {
  echo "sanitize: asan: building build-asan (clang, ASan + UBSan + fuzzer coverage)"
  # The libraries at -O1 (the tests and fuzzers run at speed), the programs' own sources at
  # -O0 (half their compile time; they are a third of the objects).
  configure build-asan -O1 -DTENDED_FUZZ=ON -DTENDED_PROGRAM_COMPILE_FLAG=-O0
  ninja -C build-asan
  # Every test but the packaging ones: they package and check the shipped (plain) build.
  echo "sanitize: asan: every test"
  # Two tests per core, as scripts/test.sh runs them: most of them wait rather than compute.
  (cd build-asan && ctest --output-on-failure --timeout 900 -j "$((2 * jobs))" -LE packaging)
  echo "sanitize: asan: fuzz targets"
  TENDED_FUZZ_BUILD=build-asan scripts/fuzz.sh "${TENDED_FUZZ_SECONDS:-5}"
}

run_tsan() {
  echo "sanitize: tsan: building build-tsan (clang, ThreadSanitizer)"
  # Everything at -O0: the 27 programs run in seconds even so.
  configure build-tsan -O0 -DTENDED_TSAN=ON -DTENDED_PROGRAM_COMPILE_FLAG=
  ninja -C build-tsan tsan_self_check "${tsan_tests[@]}"
  # The build must still see races: a guarded counter passes, one unguarded write is caught.
  build-tsan/tests/tsan_self_check guarded
  if build-tsan/tests/tsan_self_check racy 2>/dev/null; then
    echo "sanitize: tsan: a known race went unreported; the TSan build is blind" >&2
    return 1
  fi
  echo "sanitize: tsan: ${#tsan_tests[@]} test programs"
  local logs
  logs="$(mktemp -d)"
  local failed=()
  # Two at a time; each has a generous bound of its own.
  printf '%s\n' "${tsan_tests[@]}" | xargs -P "$jobs" -I{} sh -c \
    'timeout 1200 "build-tsan/tests/$1" --gtest_brief=1 >"$2/$1.log" 2>&1; echo $? >"$2/$1.rc"' \
    _ {} "$logs"
  for test in "${tsan_tests[@]}"; do
    rc="$(cat "$logs/$test.rc")"
    if [[ "$rc" != 0 ]]; then
      failed+=("$test")
      echo "--- $test (exit $rc)" >&2
      grep -E -A30 'ThreadSanitizer|FAILED|Failure' "$logs/$test.log" | head -n 80 >&2 || true
    fi
  done
  rm -rf "$logs"
  if [[ ${#failed[@]} -gt 0 ]]; then
    echo "sanitize: tsan: failed: ${failed[*]}" >&2
    return 1
  fi
  echo "sanitize: tsan: ${#tsan_tests[@]} test programs passed"
}

for stage in "${stages[@]}"; do
  case "$stage" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "usage: $0 [asan] [tsan]" >&2; exit 2 ;;
  esac
done
