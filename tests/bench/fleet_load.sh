#!/usr/bin/env bash
# The fleet load benchmark (issue 8, docs/performance.md): for each fleet size N, starts a
# real tended-coordinator on loopback with an empty state and runs tended-fleet-load with N
# simulated agents against it (cold), then restarts the coordinator on the state that run
# left and runs the same agents again (warm). Prints one table at the end; each run's full
# figures and its FLEET_LOAD line are in the output above it.
#
#   tests/bench/fleet_load.sh BUILD_DIR N [N...]
#
# Environment: FLEET_RAMP (default 75s), FLEET_MEASURE (60s), FLEET_CONNECT_RATE (500
# agents/s), FLEET_ARGS (more tended-fleet-load flags), FLEET_RUNS ("cold warm"),
# TENDED_BENCH_KEEP=1 keeps the work folders (configs, logs, state).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR N [N...]" >&2
  exit 2
fi
BIN=$(cd "$1" && pwd)
shift
COORDINATOR=$BIN/coordinator/tended-coordinator
LOAD=$BIN/tests/bench/tended-fleet-load
for binary in "$COORDINATOR" "$LOAD"; do
  if [ ! -x "$binary" ]; then
    echo "bench: $binary is missing; build it first (ninja -C $BIN tended-coordinator tended-fleet-load)" >&2
    exit 2
  fi
done
# A coordinator on an empty state grants nothing until every node has reported and one report
# deadline (60 s below) has passed: the cold window opens after that.
RAMP=${FLEET_RAMP:-75s}
MEASURE=${FLEET_MEASURE:-60s}
CONNECT_RATE=${FLEET_CONNECT_RATE:-500}
RUNS=${FLEET_RUNS:-cold warm}

# Both processes hold one socket per agent: raise the open-file limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "bench: open files limit $(ulimit -n); $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "bench: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"

coordinator_pid=""
work_dirs=()
cleanup() {
  if [ -n "$coordinator_pid" ]; then kill -9 "$coordinator_pid" 2>/dev/null || true; fi
  if [ -z "${TENDED_BENCH_KEEP:-}" ]; then
    for dir in "${work_dirs[@]}"; do rm -rf "$dir"; done
  fi
}
trap cleanup EXIT

write_config() {  # WORK
  cat >"$1/coordinator.yaml" <<YAML
listen: "127.0.0.1:0"
state_dir: $1/state
fleet:
  report_deadline: 60s
  report_interval: 10s
leases:
  # One reboot at a time, no soak and no window: every gate passes once the fleet reports.
  reboot:
    concurrency: 1
    soak: 0s
    expected_duration: 2m
    renew_deadline: 30s
    return_deadline: 5m
YAML
  mkdir -p "$1/state"
}

# Starts the coordinator on $WORK's config and sets coordinator_pid and port. The wait is
# generous (a warm start loads every node of the last run) and bounded.
start_coordinator() {  # WORK LOG
  "$COORDINATOR" --config "$1/coordinator.yaml" --insecure --listen 127.0.0.1:0 >"$2" 2>&1 &
  coordinator_pid=$!
  port=""
  for _ in $(seq 1 1200); do
    port=$(sed -n 's/.*serving tended.v1 on port \([0-9]*\).*/\1/p' "$2" | tail -1)
    [ -n "$port" ] && return 0
    kill -0 "$coordinator_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: the coordinator did not start:" >&2
  tail -20 "$2" >&2
  exit 1
}

# SIGTERM, up to 60 s to stop cleanly, then SIGKILL (said so).
stop_coordinator() {
  kill -TERM "$coordinator_pid" 2>/dev/null || true
  for _ in $(seq 1 600); do
    kill -0 "$coordinator_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$coordinator_pid" 2>/dev/null; then
    echo "bench: the coordinator did not stop within 60 s of SIGTERM; killing it" >&2
    kill -9 "$coordinator_pid" 2>/dev/null || true
  fi
  wait "$coordinator_pid" 2>/dev/null || true
  coordinator_pid=""
}

seconds() {  # 90s, 2m, 1h (what the budget below needs; the program takes any absl duration)
  case $1 in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

results=()
for agents in "$@"; do
  WORK=$(mktemp -d "/tmp/tended-fleet-load-$agents.XXXXXX")
  work_dirs+=("$WORK")
  write_config "$WORK"
  for run in $RUNS; do
    start_coordinator "$WORK" "$WORK/coordinator-$run.log"
    echo "bench: N=$agents $run: coordinator pid $coordinator_pid on port $port (work $WORK;" \
      "load average $(cut -d' ' -f1-3 /proc/loadavg))"
    # Bounded: ramp (at least the connection time plus a report interval), window, the
    # quiesce and probes, and the drain.
    budget=$(( $(seconds "$RAMP") + $(seconds "$MEASURE") + agents / CONNECT_RATE + 600 ))
    status=0
    timeout --signal=TERM --kill-after=30 "$budget" "$LOAD" --address "127.0.0.1:$port" \
      --agents "$agents" --coordinator_pid "$coordinator_pid" --label "$run" \
      --identities "$WORK/agents.txt" --ramp "$RAMP" --measure "$MEASURE" \
      --connect_rate "$CONNECT_RATE" ${FLEET_ARGS:-} | tee "$WORK/load-$run.txt" || status=$?
    [ "$status" -eq 0 ] || echo "bench: tended-fleet-load ended with status $status" >&2
    line=$(grep '^FLEET_LOAD ' "$WORK/load-$run.txt" || true)
    results+=("${line:-FLEET_LOAD run=$run agents=$agents failed=1}")
    stop_coordinator
  done
done

# One table from the FLEET_LOAD lines.
echo
printf '%s\n' "${results[@]}" | awk '
  function v(key) { return (key in f) ? f[key] : "-" }
  function row(a, b, c, d, e, g, h, i, j, k, l, m) {
    printf "%-6s %-5s %6s %7s %7s %11s %20s %20s %8s %-26s %11s %5s\n", a, b, c, d, e, g, h, i, j, k, l, m
  }
  BEGIN {
    row("agents", "run", "coord", "RSS", "HWM", "threads", "ReportFacts ms", "AcquireLease ms",
        "calls/s", "errors in the window", "reaction", "gen")
    row("", "", "CPU %", "MB", "MB", "end (max)", "p50/p99/max", "p50/p99/max", "", "", "ms p50/max",
        "CPU %")
  }
  {
    delete f
    for (i = 2; i <= NF; i++) { n = index($i, "="); f[substr($i, 1, n - 1)] = substr($i, n + 1) }
    if (v("failed") == "1") { printf "%-6s %-5s (no figures: the run failed)\n", v("agents"), v("run"); next }
    row(v("agents"), v("run"), v("coordinator_cpu_pct"), v("rss_mb"), v("hwm_mb"),
        v("threads") " (" v("threads_max") ")", v("report_ms"), v("acquire_ms"), v("calls_per_s"),
        v("errors"), v("reaction_ms"), v("generator_cpu_pct"))
  }'
echo
printf '%s\n' "${results[@]}"
