#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs a local five-node
# demo fleet (k8s-master, k8s-node1..4) on loopback with simulated reboots. It uses the
# reference cluster's policy with the window open and the soak cut to seconds, marks every
# node as needing a reboot and shows the rolling reboot live, one node at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
# `scripts/demo.sh --os-upgrade`: the canary-first OS upgrade rollout instead.
if [ "${1:-}" = "--os-upgrade" ]; then exec scripts/demo-os-upgrade.sh; fi
# `scripts/demo.sh --k8s-upgrade`: a patch then a minor Kubernetes rollout.
if [ "${1:-}" = "--k8s-upgrade" ]; then exec scripts/demo-k8s-upgrade.sh; fi
# `scripts/demo.sh --kubernetes`: the same rollout with a fake Kubernetes API server; the
# coordinator cordons and drains each node before its reboot and uncordons it after.
KUBE=0
if [ "${1:-}" = "--kubernetes" ]; then KUBE=1; fi

source scripts/lib/demo-fleet.sh
targets=(tended-coordinator tended-agent tendedctl)
if [ "$KUBE" = 1 ]; then targets+=(fake-kube-apiserver webhook-capture); fi
demo_build "${targets[@]}"

DEMO=$(mktemp -d /tmp/tended-demo.XXXXXX)
SOAK=${TENDED_DEMO_SOAK:-5s}
NODES=(k8s-master k8s-node1 k8s-node2 k8s-node3 k8s-node4)

demo_write_coordinator_config "$SOAK"
if [ "$KUBE" = 1 ]; then
  # The fake API server plays the five kubelets: it watches the node roots' boot ids.
  "$BIN/tests/fake-kube-apiserver" --nodes "$(IFS=,; echo "${NODES[*]}")" \
    --node_roots "$DEMO/nodes" --kubeconfig_out "$DEMO/kubeconfig" >"$DEMO/kube.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$DEMO/kubeconfig" ] && break; sleep 0.1; done
  cat >>"$DEMO/coordinator.yaml" <<YAML
kubernetes:
  enabled: true
  kubeconfig: $DEMO/kubeconfig
  drain:
    timeout: 60s
  poll_interval: 1s
  facts_max_age: 10s
  node_marks:
    kured_compatible: true
YAML
  # A webhook receiver for the coordinator's notifications (generic JSON payloads), and
  # /metrics on a free port.
  "$BIN/tests/webhook-capture" --port_file "$DEMO/webhook.port" >"$DEMO/webhook.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$DEMO/webhook.port" ] && break; sleep 0.1; done
  if [ ! -s "$DEMO/webhook.port" ]; then
    echo "demo: the webhook receiver did not start:" >&2
    cat "$DEMO/webhook.log" >&2
    exit 1
  fi
  cat >>"$DEMO/coordinator.yaml" <<YAML
metrics_listen: 127.0.0.1:0
notifications:
  urls: ["generic+http://127.0.0.1:$(cat "$DEMO/webhook.port")/tended"]
YAML
fi

demo_start_coordinator
if [ "$KUBE" = 1 ]; then
  metrics_port=$(demo_log_value "$DEMO/coordinator.log" \
    's/.*serving \/metrics on .* (port \([0-9]*\)).*/\1/p' "the coordinator does not serve /metrics") || exit 1
fi

for node in "${NODES[@]}"; do
  root="$DEMO/nodes/$node"
  mkdir -p "$root/var/run" "$root/run"
  demo_boot_files "$root"
  demo_start_agent "$node" "$root"
done

echo "demo: coordinator on 127.0.0.1:$port, five agents, logs in $DEMO"
demo_wait_idle ${#NODES[@]}
echo
echo "demo: marking every node as needing a reboot (linux-image-6.1.0-28-amd64)"
for node in "${NODES[@]}"; do
  echo "linux-image-6.1.0-28-amd64" >"$DEMO/nodes/$node/var/run/reboot-required.pkgs"
  echo "*** System restart required ***" >"$DEMO/nodes/$node/var/run/reboot-required"
done
sleep 1
"${ctl[@]}" gates reboot
echo
echo "demo: the rolling reboot, as the coordinator's event log records it:"
"${ctl[@]}" events --follow > >(grep --line-buffered -E \
  'GRANTED|PHASE_CHANGED|NODE_REBOOTED|LEASE_RELEASED|FORCE|OVERDUE|VERIFICATION|KUBERNETES|RETURNED') &
follower=$!
pids+=($follower)

status=0
"${ctl[@]}" wait-rebooted 5 110s || status=$?
sleep 0.5
kill "$follower" 2>/dev/null || true
echo
"${ctl[@]}" nodes
echo
summary=$("${ctl[@]}" audit | tail -n 1)
"${ctl[@]}" audit | head -n -1
if [ "$status" -ne 0 ]; then
  echo "demo: the rollout did not finish; see $DEMO" >&2
  exit 1
fi
if [ "$KUBE" = 0 ]; then echo "demo: $summary"; fi
if [ "$KUBE" = 1 ]; then
  echo
  echo "demo: what the (fake) Kubernetes API server saw:"
  sed 's/^fake-kube-apiserver: /  /' "$DEMO/kube.log"
  # Per node: cordoned, then its pods evicted, then rebooted, then uncordoned.
  for node in "${NODES[@]}"; do
    order=$(awk -v n="$node" '$2 == n { if ($3 == "cordoned") c = NR; if ($3 == "pod" && !e) e = NR;
      if ($3 == "rebooted") r = NR; if ($3 == "uncordoned") u = NR }
      END { print (c && e && r && u && c < e && e < r && r < u) ? "ok" : "bad" }' "$DEMO/kube.log")
    if [ "$order" != ok ]; then
      echo "demo: $node was not cordoned, drained, rebooted and uncordoned in that order" >&2
      exit 1
    fi
  done
  echo "demo: every node was cordoned, drained, rebooted and uncordoned, in that order"

  # The notifications, one "event node" pair per webhook call; the last ones may still be
  # on their way, so wait (bounded) until every node's disrupting, rebooted and verified
  # messages arrived.
  notified() {
    sed -n 's/^webhook: .*"event":"\([^"]*\)".*"node":"\([^"]*\)".*/\1 \2/p' "$DEMO/webhook.log"
  }
  missing=()
  for _ in $(seq 1 100); do
    missing=()
    got=$(notified)
    for node in "${NODES[@]}"; do
      for event in disrupting rebooted verified; do
        grep -qx "$event $node" <<<"$got" || missing+=("$event $node")
      done
    done
    [ ${#missing[@]} -eq 0 ] && break
    sleep 0.1
  done
  echo
  echo "demo: the notifications the webhook received, per node in order (xN: N in a row):"
  notified | awk '{ if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
      if ($1 == last[$2]) { count[$2]++; next }
      flush($2); last[$2] = $1; count[$2] = 1 }
    function flush(node) { if (last[node] == "") return
      line[node] = line[node] (line[node] == "" ? "" : ", ") last[node] \
        (count[node] > 1 ? " x" count[node] : "") }
    END { for (i = 1; i <= n; i++) { flush(order[i]); print "  " order[i] ": " line[order[i]] } }'
  if [ ${#missing[@]} -ne 0 ]; then
    echo "demo: notifications missing: ${missing[*]}" >&2
    exit 1
  fi
  echo "demo: every node's disrupting, rebooted and verified notifications arrived"

  echo
  echo "demo: from the coordinator's /metrics (127.0.0.1:$metrics_port):"
  scrape() {
    if command -v curl >/dev/null; then
      curl -sf "http://127.0.0.1:$metrics_port/metrics"
    else
      exec 3<>"/dev/tcp/127.0.0.1/$metrics_port" || return 1
      printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
      sed '1,/^\r\{0,1\}$/d' <&3
      exec 3<&-
    fi
  }
  metrics=$(scrape) || {
    echo "demo: could not scrape /metrics" >&2
    exit 1
  }
  grep -E '^tended_(disruptions_total|notifications_(sent|failed)_total|events_total\{type="(node_rebooted|lease_released)"\})' \
    <<<"$metrics" | sed 's/^/  /' || true
  if ! grep -qx 'tended_disruptions_total{kind="reboot"} 5' <<<"$metrics"; then
    echo 'demo: /metrics does not show tended_disruptions_total{kind="reboot"} 5' >&2
    exit 1
  fi
  echo "demo: /metrics counts 5 reboot disruptions"
  echo
  echo "demo: $summary"
fi
case "$summary" in
  "5 nodes rebooted, at most 1 disrupted at once") exit 0 ;;
  *) exit 1 ;;
esac
