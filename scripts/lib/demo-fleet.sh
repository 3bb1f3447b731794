# Shared by the demo scripts: building, starting the coordinator on a free loopback port,
# the agents' simulated node files, and stopping everything on exit. Sourced, not run.

# Installs what is missing and builds the given targets into $BUILD (default build/).
# With TENDED_DEMO_PREBUILT=/abs/build/dir (ctest's runs of the demos) it only uses that.
demo_build() {
  if [ -n "${TENDED_DEMO_PREBUILT:-}" ]; then
    BIN=$TENDED_DEMO_PREBUILT
    return
  fi
  scripts/install-deps.sh
  BUILD=${BUILD:-build}
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$BUILD" "$@"
  BIN=$PWD/$BUILD
}

# Every background process the demo starts; all are stopped and reaped on exit.
pids=()
demo_cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Under ctest, a demo that passed leaves nothing behind; a failed one keeps its logs.
  if [ "$status" -eq 0 ] && [ -n "${TENDED_DEMO_PREBUILT:-}" ] && [ -n "${DEMO:-}" ]; then
    rm -rf "$DEMO"
  fi
}
trap demo_cleanup EXIT

# Writes $DEMO/coordinator.yaml: the reference policy (packaging/examples/coordinator.yaml)
# with the window open, soaks of REBOOT_SOAK, no Prometheus (none runs here), a fresh state
# folder and port 0. EXTRA_LEASES (indented under `leases:`) adds kinds; more keys can be
# appended to the file afterwards.
demo_write_coordinator_config() {
  local reboot_soak=$1 extra_leases=${2:-}
  cat >"$DEMO/coordinator.yaml" <<YAML
listen: "127.0.0.1:0"
state_dir: $DEMO/coordinator-state
fleet:
  report_deadline: 10s
  report_interval: 1s
leases:
  reboot:
    concurrency: 1
    soak: $reboot_soak
    expected_duration: 30s
    renew_deadline: 30s
    return_deadline: 2m
$extra_leases
YAML
}

# Starts tended-coordinator with $DEMO/coordinator.yaml (which listens on port 0) and sets
# Prints what the sed expression SED_EXPR extracts from LOG once it appears (waiting up to
# 10 s); otherwise shows LOG with WHAT ("the coordinator did not start") and exits.
demo_log_value() {  # LOG SED_EXPR WHAT
  local value=""
  for _ in $(seq 1 100); do
    value=$(sed -n "$2" "$1")
    [ -n "$value" ] && break
    sleep 0.1
  done
  if [ -z "$value" ]; then
    echo "demo: $3:" >&2
    cat "$1" >&2
    exit 1
  fi
  echo "$value"
}

# `port` and the tendedctl command line `ctl`.
demo_start_coordinator() {
  : >"$DEMO/coordinator.log"  # Exists before the background start opens it.
  "$BIN/coordinator/tended-coordinator" --config "$DEMO/coordinator.yaml" --insecure \
    >"$DEMO/coordinator.log" 2>&1 &
  pids+=($!)
  port=$(demo_log_value "$DEMO/coordinator.log" 's/.*serving tended.v1 on port \([0-9]*\).*/\1/p' \
    "the coordinator did not start") || exit 1
  ctl=("$BIN/coordinator/ctl/tendedctl" --address "127.0.0.1:$port" --insecure)
}

# Waits (up to 10 s) until all N nodes report IDLE, then shows them. A coordinator that
# started on an empty state grants nothing until every node has reported and one report
# deadline has passed: waits (up to 30 s) for that too, and says so.
demo_wait_idle() {  # N
  for _ in $(seq 1 100); do
    [ "$("${ctl[@]}" nodes 2>/dev/null | grep -c ' IDLE ')" -eq "$1" ] && break
    sleep 0.1
  done
  "${ctl[@]}" nodes
  if "${ctl[@]}" gates 2>/dev/null | grep -q 'BLOCK state'; then
    echo "demo: the coordinator started on an empty state: it grants nothing until every node" \
      "has reported and one report deadline has passed"
    for _ in $(seq 1 300); do
      "${ctl[@]}" gates 2>/dev/null | grep -q 'BLOCK state' || break
      sleep 0.1
    done
  fi
}

# The files an agent reads about its boot, under a node's root.
demo_boot_files() {
  local root=$1
  mkdir -p "$root/proc/sys/kernel/random"
  cat /proc/sys/kernel/random/uuid >"$root/proc/sys/kernel/random/boot_id"
  uname -r >"$root/proc/sys/kernel/osrelease"
  printf 'btime %s\n' "$(date +%s)" >"$root/proc/stat"
}

# Writes $DEMO/NODE.yaml (simulated reboots, timings in seconds, EXTRA_YAML appended) and
# starts that node's tended-agent against the coordinator on $port.
demo_start_agent() {
  local node=$1 root=$2 extra=${3:-}
  cat >"$DEMO/$node.yaml" <<YAML
node_name: $node
coordinator: 127.0.0.1:$port
insecure: true
root: $root
report_interval: 1s
check_period: 30s
reconnect:
  initial_backoff: 200ms
  max_backoff: 2s
reboot:
  method: simulate
  delay: 1s
$extra
YAML
  "$BIN/agent/tended-agent" --config "$DEMO/$node.yaml" >"$DEMO/$node.log" 2>&1 &
  pids+=($!)
}

# An empty Debian 12 dpkg root at ROOT for the demos that install packages (the apt and dpkg
# folders, /var/run -> /run, an empty status, os-release); EXTRA folders are made too.
demo_dpkg_root() {  # ROOT [EXTRA_FOLDER...]
  local root=$1 d
  shift
  for d in etc/apt/apt.conf.d etc/apt/sources.list.d etc/apt/preferences.d var/lib/dpkg/updates \
    var/lib/dpkg/info var/lib/dpkg/triggers var/lib/dpkg/alternatives var/lib/apt/lists/partial \
    var/cache/apt/archives/partial var/log/apt run proc/sys/kernel/random "$@"; do
    mkdir -p "$root/$d"
  done
  ln -s ../run "$root/var/run"
  : >"$root/var/lib/dpkg/status"
  : >"$root/var/lib/dpkg/available"
  printf 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' >"$root/etc/os-release"
}

# Exits unless running as root: dpkg into throwaway roots needs it. WHAT names the demo.
demo_require_root() {  # WHAT
  if [ "$(id -u)" -ne 0 ]; then
    echo "demo: the $1 demo installs packages into throwaway dpkg roots: run it as root" >&2
    exit 2
  fi
}

