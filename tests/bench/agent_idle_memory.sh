#!/usr/bin/env bash
# The agent's idle memory: starts a real tended-coordinator and tended-agent on loopback,
# lets the agent connect, compute its OS upgrade plan and go idle, then prints VmRSS and
# VmHWM from /proc/<pid>/status. Twice: with OS upgrades on (apt.enabled) and off.
#
# With OS upgrades on, the agent plans against a throwaway root holding a copy of this
# host's dpkg status, apt lists and sources (read only here; nothing of the host changes,
# no network: update_interval 0), so the plan covers the host's real package universe.
#
#   tests/bench/agent_idle_memory.sh [BUILD_DIR] [IDLE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
IDLE=${2:-15}
BIN=$PWD/$BUILD
for binary in coordinator/tended-coordinator agent/tended-agent; do
  if [ ! -x "$BIN/$binary" ]; then
    echo "bench: $BIN/$binary is missing; build it first (ninja -C $BUILD tended-coordinator tended-agent)" >&2
    exit 2
  fi
done
WORK=$(mktemp -d /tmp/tended-idle-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${TENDED_BENCH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/coordinator.yaml" <<YAML
listen: "127.0.0.1:0"
state_file: $WORK/coordinator-state.json
fleet:
  report_deadline: 10s
  report_interval: 1s
leases:
  reboot: {}
  # Never granted: the agent asks and waits, as it does while a rollout waits for its window.
  # (Granted, it would install the host's upgrades into the throwaway root, and with
  # --force-script-chrootless their maintainer scripts would run against this host.)
  os_upgrade: {enabled: false}
YAML
"$BIN/coordinator/tended-coordinator" --config "$WORK/coordinator.yaml" --insecure \
  >"$WORK/coordinator.log" 2>&1 &
pids+=($!)
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*serving tended.v1 on port \([0-9]*\).*/\1/p' "$WORK/coordinator.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$WORK/coordinator.log" >&2; exit 1; }

make_root() {  # root with-apt
  local root=$1
  mkdir -p "$root/proc/sys/kernel/random" "$root/run" "$root/var/lib/dpkg" "$root/etc/apt" \
    "$root/var/lib/apt" "$root/var/cache/apt/archives/partial"
  ln -sfn ../run "$root/var/run"
  cat /proc/sys/kernel/random/uuid >"$root/proc/sys/kernel/random/boot_id"
  uname -r >"$root/proc/sys/kernel/osrelease"
  printf 'btime %s\n' "$(date +%s)" >"$root/proc/stat"
  if [ "$2" = yes ]; then
    cp /var/lib/dpkg/status "$root/var/lib/dpkg/status"
    cp -r /var/lib/apt/lists "$root/var/lib/apt/lists"
    rm -f "$root/var/lib/apt/lists/lock"
    cp -r /etc/apt/sources.list.d "$root/etc/apt/"
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
    mkdir -p "$root/etc/apt/apt.conf.d"
    cp /etc/os-release "$root/etc/os-release"
    cat >"$root/etc/apt/apt.conf.d/50unattended-upgrades" <<'CONF'
Unattended-Upgrade::Origins-Pattern {
  "origin=Debian,codename=${distro_codename},label=Debian";
  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
  "origin=Debian,codename=${distro_codename}-updates";
};
CONF
  fi
}

measure() {  # name with-apt
  local root="$WORK/$1" pid
  make_root "$root" "$2"
  cat >"$WORK/$1.yaml" <<YAML
node_name: $1
coordinator: 127.0.0.1:$port
insecure: true
root: $root
report_interval: 1s
reboot:
  method: simulate
apt:
  enabled: $([ "$2" = yes ] && echo true || echo false)
  plan_interval: 1h
  update_interval: 0
YAML
  "$BIN/agent/tended-agent" --config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
  pid=$!
  pids+=($pid)
  sleep "$IDLE"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench: the agent $1 exited:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
  fi
  local plan
  plan=$(grep -o 'plan: [0-9]* upgrades, [0-9]* kept back' "$WORK/$1.log" | tail -n 1 || true)
  local rss hwm anon file
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
  file=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status")
  printf '%-22s VmRSS %6.1f MB (anon %5.1f, file %5.1f)   VmHWM %6.1f MB   %s\n' "$1" \
    "$(echo "$rss/1024" | bc -l)" "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)" \
    "$(echo "$hwm/1024" | bc -l)" "${plan:-(no OS upgrades)}"
  if [ -n "${TENDED_BENCH_MAPS:-}" ]; then
    awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6} /^Rss:/ {rss[name] += $2} END {
      for (n in rss) if (rss[n] >= 256) printf "    %6d kB  %s\n", rss[n], (n == "" ? "[anon]" : n)
    }' "/proc/$pid/smaps" | sort -rn
  fi
  kill "$pid"
}

packages=$(grep -c '^Package: ' /var/lib/dpkg/status || true)
echo "bench: idle ${IDLE}s after start; host status with $packages packages; $(nproc) CPUs"
measure idle-reboots-only no
measure idle-with-apt yes
