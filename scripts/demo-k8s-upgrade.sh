#!/usr/bin/env bash
# Kubernetes version rollouts on a local five-node demo fleet (k8s-master, k8s-node1..4) on
# loopback: a patch rollout (1.30.2 -> 1.30.5), then a minor one (1.30.5 -> 1.31.1). Each
# node is a throwaway dpkg root with demo kubeadm, kubelet and kubectl packages (held) from a
# local pkgs.k8s.io look-alike served over HTTP, one repository per minor. The agents run
# the typed steps for real: pinned installs through the apt engine into the roots, the apt
# source switch, and the kubeadm and systemctl programs under each root (demo stand-ins that
# log their calls; the demo kubeadm refuses a target other than its own version, as the real
# one does). The control plane's etcd snapshot comes from a real etcd (Debian's) on a free
# loopback port; a fake Kubernetes API server plays the kubelets, so the coordinator cordons,
# drains, verifies kubeletVersion and uncordons as it would in a cluster.
# Run as `scripts/demo.sh --k8s-upgrade` or directly. Needs root (dpkg roots).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/demo-fleet.sh
demo_require_root Kubernetes
demo_build tended-coordinator tended-agent tendedctl fake-kube-apiserver

DEMO=$(mktemp -d /tmp/tended-k8s-demo.XXXXXX)
chmod 755 "$DEMO"
SOAK=${TENDED_DEMO_SOAK:-3s}
NODES=(k8s-master k8s-node1 k8s-node2 k8s-node3 k8s-node4)
PKGS=$DEMO/pkgs
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The demo's kubeadm: logs each call; `upgrade apply|plan vX` fails unless X is its own
# version (install the kubeadm package first, as kubeadm's own rule says).
build_deb() {  # name version
  local name=$1 version=$2 src="$DEMO/src/$1-$2" minor
  minor=$(echo "$version" | cut -d. -f1,2)
  mkdir -p "$src/DEBIAN" "$src/usr/bin" "$PKGS/core:/stable:/v$minor/deb"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: demo <demo@example.invalid>\nDescription: tended demo %s\n' \
    "$name" "$version" "$name" >"$src/DEBIAN/control"
  local upstream=${version%%-*}
  cat >"$src/usr/bin/$name" <<SCRIPT
#!/bin/sh
root=\${0%/usr/bin/$name}
node=\${root##*/}
demo=\${root%/nodes/*}
echo "\$(date +%T) \$node: $name $upstream \$*" >>"\$demo/calls.log"
if [ "$name" = kubeadm ] && [ "\$1" = upgrade ] && [ "\$2" != node ] && [ "\$3" != "v$upstream" ]; then
  echo "[upgrade/version] FATAL: the target \$3 is not this kubeadm's version v$upstream" >&2
  exit 1
fi
SCRIPT
  chmod 755 "$src/usr/bin/$name"
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$src" \
    "$PKGS/core:/stable:/v$minor/deb/${name}_${version}_all.deb" >/dev/null
}
publish() {  # minor
  (cd "$PKGS/core:/stable:/v$1/deb" && apt-ftparchive packages . >Packages &&
    apt-ftparchive release . >Release.new && mv Release.new Release)
}
for version in 1.30.2-1.1 1.30.5-1.1 1.31.0-1.1 1.31.1-1.1; do
  for name in kubeadm kubelet kubectl; do build_deb "$name" "$version"; done
done
publish 1.30
publish 1.31

# The package repository over HTTP (apt reaches pkgs.k8s.io the same way).
REPO_PORT=$(free_port)
(cd "$PKGS" && exec python3 -m http.server --bind 127.0.0.1 "$REPO_PORT") >"$DEMO/repo.log" 2>&1 &
pids+=($!)
REPO_URL="http://127.0.0.1:$REPO_PORT"
for _ in $(seq 1 100); do
  curl -fsS "$REPO_URL/core:/stable:/v1.30/deb/Release" >/dev/null 2>&1 && break
  sleep 0.1
done

# A real etcd (the cluster's database) for the control plane's snapshot.
ETCD_CLIENT=$(free_port)
ETCD_PEER=$(free_port)
/usr/bin/etcd --name demo --data-dir "$DEMO/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "demo=http://127.0.0.1:$ETCD_PEER" >"$DEMO/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$ETCD_CLIENT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

# The node roots, each with kubeadm, kubelet and kubectl 1.30.2 installed and held.
for node in "${NODES[@]}"; do
  root="$DEMO/nodes/$node"
  demo_dpkg_root "$root" var/lib/kubelet usr/bin
  echo "deb [trusted=yes] $REPO_URL/core:/stable:/v1.30/deb/ /" \
    >"$root/etc/apt/sources.list.d/kubernetes.list"
  dpkg --root="$root" --force-script-chrootless --log="$root/var/log/dpkg.log" -i \
    "$PKGS/core:/stable:/v1.30/deb/kubeadm_1.30.2-1.1_all.deb" \
    "$PKGS/core:/stable:/v1.30/deb/kubelet_1.30.2-1.1_all.deb" \
    "$PKGS/core:/stable:/v1.30/deb/kubectl_1.30.2-1.1_all.deb" >/dev/null
  printf '%s hold\n' kubeadm kubelet kubectl | dpkg --root="$root" --set-selections
  echo 1.30.2 >"$root/var/lib/kubelet/version"
  # The demo's systemctl: a kubelet restart makes the node report the installed kubelet.
  cat >"$root/usr/bin/systemctl" <<'SCRIPT'
#!/bin/sh
root=${0%/usr/bin/systemctl}
node=${root##*/}
demo=${root%/nodes/*}
echo "$(date +%T) $node: systemctl $*" >>"$demo/calls.log"
if [ "$1" = restart ] && [ "$2" = kubelet ]; then
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Version}' kubelet | cut -d- -f1 \
    >"$root/var/lib/kubelet/version"
fi
SCRIPT
  chmod 755 "$root/usr/bin/systemctl"
  demo_boot_files "$root"
done
mkdir -p "$DEMO/nodes/k8s-master/etc/kubernetes/manifests"
echo "# demo: this node runs the API server" \
  >"$DEMO/nodes/k8s-master/etc/kubernetes/manifests/kube-apiserver.yaml"

# The fake API server plays the five kubelets (their kubeletVersion from the node roots).
"$BIN/tests/fake-kube-apiserver" --nodes "$(IFS=,; echo "${NODES[*]}")" \
  --node_roots "$DEMO/nodes" --kubeconfig_out "$DEMO/kubeconfig" >"$DEMO/kube.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$DEMO/kubeconfig" ] && break; sleep 0.1; done

demo_write_coordinator_config "$SOAK" "  k8s_upgrade:
    enabled: true
    concurrency: 1
    soak: $SOAK
    expected_duration: 2m
    renew_deadline: 30s
    return_deadline: 5m
    control_plane_order: [k8s-master]
    worker_order: [k8s-node4, k8s-node3, k8s-node2, k8s-node1]
    min_pod_ready_ratio: 0.9
    postflight_wait: 1m"
cat >>"$DEMO/coordinator.yaml" <<YAML
kubernetes:
  enabled: true
  kubeconfig: $DEMO/kubeconfig
  drain:
    timeout: 60s
  poll_interval: 1s
  facts_max_age: 10s
YAML
demo_start_coordinator

for node in "${NODES[@]}"; do
  demo_start_agent "$node" "$DEMO/nodes/$node" "k8s:
  enabled: true
  repo_url_pattern: $REPO_URL/core:/stable:/v{minor}/deb/
  etcd:
    endpoint: http://127.0.0.1:$ETCD_CLIENT
    ca_file: ''
    cert_file: ''
    key_file: ''
    snapshot_dir: /var/lib/tended/etcd-snapshots
    keep: 3"
done

echo "demo: coordinator on 127.0.0.1:$port, five agents with a dpkg root each, a real etcd on" \
  "127.0.0.1:$ETCD_CLIENT, packages on $REPO_URL, logs in $DEMO"
demo_wait_idle ${#NODES[@]}
# The control plane's first version check (at start; weekly afterwards).
for _ in $(seq 1 100); do
  "${ctl[@]}" k8s-rollout list >/dev/null 2>&1 || true
  grep -q "Kubernetes version check done" "$DEMO/k8s-master.log" && break
  sleep 0.1
done
grep -m1 "Kubernetes version check" "$DEMO/k8s-master.log" | sed 's/^.*\] /demo: k8s-master: /' || true

"${ctl[@]}" events --follow > >(grep --line-buffered -E \
  'k8s_upgrade|K8S|ROLLOUT|rollout|cordon|drain|verified') &
follower=$!
pids+=($follower)

run_rollout() {  # target kind
  echo
  echo "demo: dry run of the $2 rollout to $1:"
  "${ctl[@]}" --kind "$2" --dry_run k8s-rollout start "$1" "demo dry run" | sed 's/^/  /'
  echo
  echo "demo: the $2 rollout to $1, as the coordinator's event log records it:"
  "${ctl[@]}" --kind "$2" k8s-rollout start "$1" "demo" >/dev/null
  local state=""
  for _ in $(seq 1 1500); do
    state=$("${ctl[@]}" k8s-rollout get 2>/dev/null | sed -n 's/^state  *\([A-Z_]*\).*/\1/p' | head -n 1)
    case "$state" in *SUCCEEDED | *FAILED | *CANCELLED) break ;; esac
    sleep 0.2
  done
  sleep 0.5
  echo
  "${ctl[@]}" k8s-rollout get | sed 's/^/  /'
  case "$state" in *SUCCEEDED) return 0 ;; esac
  echo "demo: the rollout to $1 ended $state; see $DEMO" >&2
  return 1
}

status=0
run_rollout 1.30.5 patch || status=1
if [ "$status" = 0 ]; then run_rollout 1.31.1 minor || status=1; fi
kill "$follower" 2>/dev/null || true
echo
echo "demo: what kubeadm and systemctl were asked to do, in order:"
sed 's/^/  /' "$DEMO/calls.log"
[ "$status" = 0 ] || exit 1

versions="" at_target=0
for node in "${NODES[@]}"; do
  for name in kubeadm kubelet kubectl; do
    v=$(dpkg-query --admindir="$DEMO/nodes/$node/var/lib/dpkg" -W -f='${Version}' "$name")
    versions="$versions $node:$name=$v"
    [ "$v" = 1.31.1-1.1 ] && at_target=$((at_target + 1))
  done
done
order=$(grep 'kubeadm 1.31.1 upgrade' "$DEMO/calls.log" | grep -v plan |
  sed 's/^[0-9:]* \([a-z0-9-]*\):.*/\1/' | paste -sd' ' -)
snapshot=$(ls "$DEMO"/nodes/k8s-master/var/lib/tended/etcd-snapshots/*.db | tail -n 1)
disrupted=$("${ctl[@]}" audit | tail -n 1 | sed -n 's/.*at most \([0-9]*\) disrupted at once.*/\1/p')
if [ "$at_target" != 15 ]; then
  echo "demo: not every node is at 1.31.1:$versions" >&2
  exit 1
fi
echo
echo "demo: 5 nodes 1.30.2 -> 1.30.5 -> 1.31.1 in the order $order, etcd snapshot $snapshot" \
  "($(stat -c %s "$snapshot") bytes), at most ${disrupted:-?} disrupted at once"
[ "${disrupted:-1}" -le 1 ]
