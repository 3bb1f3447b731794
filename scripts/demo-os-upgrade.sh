#!/usr/bin/env bash
# A canary-first OS upgrade rollout on a local five-node demo fleet (k8s-master,
# k8s-node1..4) on loopback. Each node is a throwaway dpkg root under /tmp with two demo
# packages installed from a local repository; the repository then gets their updates (one
# asks for a reboot). The coordinator lets the canary k8s-node4 upgrade first, soaks, then
# the others one at a time; each node's reboot follows its upgrade. Real dpkg runs, confined
# to the roots (so it needs root, like the apt engine's tests); reboots are simulated.
# Run as `scripts/demo.sh --os-upgrade` or directly.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/demo-fleet.sh
demo_require_root "OS upgrade"
BUILD=${TENDED_DEMO_BUILD:-build}
demo_build tended-coordinator tended-agent tendedctl

DEMO=$(mktemp -d /tmp/tended-os-demo.XXXXXX)
chmod 755 "$DEMO"
CANARY_SOAK=${TENDED_DEMO_CANARY_SOAK:-10s}
NODES=(k8s-master k8s-node1 k8s-node2 k8s-node3 k8s-node4)
CANARY=k8s-node4

# Tiny packages: demo-libssl (a library update) and demo-kernel, whose postinst asks for
# a reboot as a kernel's does.
build_deb() {  # name version postinst-body out-dir
  local src="$DEMO/src/$1-$2"
  mkdir -p "$src/DEBIAN" "$src/usr/share/doc/$1" "$4"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: demo <demo@example.invalid>\nDescription: tended demo package %s\n' \
    "$1" "$2" "$1" >"$src/DEBIAN/control"
  echo "$1 $2" >"$src/usr/share/doc/$1/VERSION"
  if [ -n "$3" ]; then
    printf '#!/bin/sh\nset -e\n%s\n' "$3" >"$src/DEBIAN/postinst"
    chmod 755 "$src/DEBIAN/postinst"
  fi
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$src" "$4/$1_$2_all.deb" >/dev/null
}
REBOOT_POSTINST='if [ "$1" = configure ] && [ -n "$2" ]; then touch "$DPKG_ROOT/var/run/reboot-required"; echo demo-kernel >>"$DPKG_ROOT/var/run/reboot-required.pkgs"; fi'
build_deb demo-libssl 1.0 "" "$DEMO/base"
build_deb demo-kernel 1.0 "$REBOOT_POSTINST" "$DEMO/base"

REPO=$DEMO/repo
ARCH=$(dpkg --print-architecture)
publish() {
  local dists="$REPO/dists/stable-security" bin
  bin="$dists/main/binary-$ARCH"
  mkdir -p "$bin"
  (cd "$REPO" && apt-ftparchive packages pool >"$bin/Packages")
  (cd "$REPO" && apt-ftparchive -o APT::FTPArchive::Release::Origin=NodeOS \
    -o APT::FTPArchive::Release::Label=NodeOS-Security \
    -o APT::FTPArchive::Release::Suite=stable-security \
    -o APT::FTPArchive::Release::Codename=bookworm-security \
    -o APT::FTPArchive::Release::Components=main \
    -o "APT::FTPArchive::Release::Architectures=$ARCH" release dists/stable-security >"$DEMO/Release")
  mv "$DEMO/Release" "$dists/Release"
}
mkdir -p "$REPO/pool"
publish

demo_write_coordinator_config 2s "  os_upgrade:
    concurrency: 1
    soak: 2s
    expected_duration: 30s
    renew_deadline: 30s
    return_deadline: 2m
    canary: $CANARY
    canary_soak: $CANARY_SOAK"
demo_start_coordinator

for node in "${NODES[@]}"; do
  root="$DEMO/nodes/$node"
  demo_dpkg_root "$root"
  printf 'Types: deb\nURIs: file:%s\nSuites: stable-security\nComponents: main\nTrusted: yes\n' \
    "$REPO" >"$root/etc/apt/sources.list.d/demo.sources"
  cat >"$root/etc/apt/apt.conf.d/50unattended-upgrades" <<'CONF'
Unattended-Upgrade::Origins-Pattern { "o=NodeOS,n=${distro_codename}-security"; };
CONF
  dpkg --root="$root" --force-script-chrootless --log="$root/var/log/dpkg.log" \
    -i "$DEMO/base/demo-libssl_1.0_all.deb" "$DEMO/base/demo-kernel_1.0_all.deb" >/dev/null
  demo_boot_files "$root"
  demo_start_agent "$node" "$root" "apt:
  enabled: true
  plan_interval: 2s
  update_interval: 2s"
done

echo "demo: coordinator on 127.0.0.1:$port, five agents with a dpkg root each, logs in $DEMO"
demo_wait_idle ${#NODES[@]}
echo
echo "demo: publishing demo-libssl 1.1 and demo-kernel 1.1 (its postinst asks for a reboot)"
build_deb demo-libssl 1.1 "" "$REPO/pool"
build_deb demo-kernel 1.1 "$REBOOT_POSTINST" "$REPO/pool"
publish
sleep 4
"${ctl[@]}" gates os_upgrade
echo
echo "demo: the rollout, as the coordinator's event log records it:"
"${ctl[@]}" events --follow > >(grep --line-buffered -E \
  'GRANTED|STEP_REPORTED|LEASE_RELEASED|ROLLOUT|FORCE|OVERDUE|VERIFICATION') &
follower=$!
pids+=($follower)

upgraded() {
  local count=0 node
  for node in "${NODES[@]}"; do
    if [ "$(dpkg-query --admindir="$DEMO/nodes/$node/var/lib/dpkg" -W -f='${Version}' demo-libssl)" = 1.1 ]; then
      count=$((count + 1))
    fi
  done
  echo "$count"
}
status=1
for _ in $(seq 1 900); do
  if [ "$(upgraded)" -eq 5 ] && "${ctl[@]}" wait-rebooted 5 1s >/dev/null 2>&1; then
    status=0
    break
  fi
  sleep 0.2
done
sleep 0.5
kill "$follower" 2>/dev/null || true
echo
"${ctl[@]}" nodes
echo
audit=$("${ctl[@]}" audit | tail -n 1)
first=$("${ctl[@]}" events | grep GRANTED | grep -m1 os_upgrade | grep -o 'k8s-[a-z0-9]*' | head -n 1 || true)
if [ "$status" -ne 0 ]; then
  echo "demo: the rollout did not finish ($(upgraded) of 5 upgraded); see $DEMO" >&2
  exit 1
fi
disrupted=$(echo "$audit" | sed -n 's/.*at most \([0-9]*\) disrupted at once.*/\1/p')
echo "demo: 5 nodes upgraded canary-first ($first first) and rebooted, at most $disrupted disrupted at once"
[ "$first" = "$CANARY" ] && [ "$disrupted" = 1 ]
