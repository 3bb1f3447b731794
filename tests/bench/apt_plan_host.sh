#!/bin/bash
# Times `tended-agent plan` on this host's real package lists (lz4-compressed on Debian),
# in a throwaway root that holds a copy of the host's dpkg status, apt lists, sources and
# os-release (nothing of the host changes, no network, no lock taken). Then, unless
# NO_UU=1, times unattended-upgrades' own planning code on the same root once
# (tests/unit/agent/apt/engine/testdata/uu_oracle.py) and checks that both pick the same packages.
# With UU_DRY_RUN=1 it also runs the whole `unattended-upgrade --dry-run`
# (tests/bench/uu_dry_run.py) on the same root twice: first with an empty archive cache,
# so it downloads every package it would install from the root's sources into the root
# (about 200 MB on a Debian 12 host a few months behind), then with the cache warm, which
# is unattended-upgrades' own cost without the network.
#
# usage: [NO_UU=1] [UU_DRY_RUN=1] tests/bench/apt_plan_host.sh [BUILD_DIR=build] [RUNS=5] [TENDED_AGENT=BUILD_DIR/agent/tended-agent]
set -euo pipefail

BUILD=${1:-build}
RUNS=${2:-5}
AGENT=${3:-$BUILD/agent/tended-agent}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/apt-plan-host.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

root=$WORK/root
mkdir -p "$root/proc/sys/kernel" "$root/run" "$root/var/lib/dpkg/updates" "$root/var/lib/apt" \
  "$root/etc/apt/apt.conf.d" "$root/var/cache/apt/archives/partial"
ln -sfn ../run "$root/var/run"
uname -r >"$root/proc/sys/kernel/osrelease"
cp /var/lib/dpkg/status "$root/var/lib/dpkg/status"
cp -r /var/lib/apt/lists "$root/var/lib/apt/lists"
rm -f "$root/var/lib/apt/lists/lock"
cp -r /etc/apt/sources.list.d "$root/etc/apt/"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
cp /etc/os-release "$root/etc/os-release"
cat >"$root/etc/apt/apt.conf.d/50unattended-upgrades" <<'CONF'
Unattended-Upgrade::Origins-Pattern {
  "origin=Debian,codename=${distro_codename},label=Debian";
  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
  "origin=Debian,codename=${distro_codename}-updates";
};
CONF

echo "host: $(grep -c '^Package: ' /var/lib/dpkg/status) installed packages; $(nproc) CPUs;" \
  "lists: $(cd /var/lib/apt/lists && ls -- *_Packages* 2>/dev/null | tr '\n' ' ')"

times=()
for _ in $(seq 1 "$RUNS"); do
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$AGENT" plan --root "$root" --json \
    >"$WORK/plan.json"
  read -r wall user sys rss <"$WORK/time"
  echo "tended-agent plan: ${wall} s wall, ${user} s user, ${sys} s sys, peak RSS ${rss} KB"
  times+=("$wall")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "tended-agent plan: median ${median} s over $RUNS runs"
/usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
print("plan: %d upgrades (%d new), %d kept back" % (len(p["upgrade"]),
      sum(1 for u in p["upgrade"] if not u["from"]), len(p["kept"])))' "$WORK/plan.json"

[ "${NO_UU:-0}" = 1 ] && exit 0
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time" /usr/bin/python3 \
  "$SRC/tests/unit/agent/apt/engine/testdata/uu_oracle.py" "$root" Debian \
  "$(. /etc/os-release && echo "$VERSION_CODENAME")" >"$WORK/uu.json"
read -r wall user sys rss <"$WORK/time"
echo "unattended-upgrades planning code only: ${wall} s wall, ${user} s user (1 run)"
echo "ratio: $(awk -v a="$wall" -v b="$median" 'BEGIN {printf "%.0f", a / b}')x"
/usr/bin/python3 -c '
import json, sys
uu = set(json.load(open(sys.argv[1])))
ours = {u["package"] for u in json.load(open(sys.argv[2]))["upgrade"] if u["from"]}
print("same packages as unattended-upgrades:", uu == ours, sorted(uu ^ ours)[:20])
sys.exit(0 if uu == ours else 1)' "$WORK/uu.json" "$WORK/plan.json"

[ "${UU_DRY_RUN:-0}" = 1 ] || exit 0
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
for pass in "cold cache (downloads)" "warm cache"; do
  status=0
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" /usr/bin/python3 "$SRC/tests/bench/uu_dry_run.py" \
    "$root" Debian "$codename" >"$WORK/dry-run.log" 2>&1 || status=$?
  read -r wall user sys rss < <(tail -n 1 "$WORK/time")
  echo "unattended-upgrade --dry-run, $pass: ${wall} s wall, ${user} s user, exit $status;" \
    "archives $(du -sm "$root/var/cache/apt/archives" | cut -f1) MB;" \
    "$(awk -v a="$wall" -v b="$median" 'BEGIN {printf "%.0f", a / b}')x the plan's median"
  [ "$status" = 0 ] || tail -n 20 "$WORK/dry-run.log"
done
upgraded=$(grep -h "Packages that will be upgraded" "$root/var/log/unattended-upgrades/"*.log |
  tail -n 1 | sed 's/.*upgraded: //' | wc -w || true)
echo "unattended-upgrade --dry-run would upgrade $upgraded packages"
