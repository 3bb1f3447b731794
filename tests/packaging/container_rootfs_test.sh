#!/usr/bin/env bash
# The coordinator image's root filesystem, built by the steps of
# packaging/container/Containerfile where no container builder can run (its base image
# comes from a registry this machine cannot reach): the Containerfile's own user command
# (pointed at the root with --prefix), then the tended-coordinator .deb installed by real
# dpkg into that root. Checks the user, the state folder, that nothing else in the root is
# writable by the image's user, and that ENTRYPOINT and CMD name what is there. Then runs
# that root's tended-coordinator as the image's user on a read-only root (a private mount
# namespace), with the ConfigMap's configuration and the in-cluster environment of a pod
# (service-account token, CA and namespace under /var/run/secrets/kubernetes.io,
# KUBERNETES_SERVICE_HOST/PORT) against the fake Kubernetes API server behind TLS, and
# checks that it reads the API with the token and that its gRPC service answers. It serves
# mTLS as shipped: the Secret's certificate, key and CA minted by the image's tendedctl,
# the ConfigMap's tls: paths pointed at them.
#
#   tests/packaging/container_rootfs_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: mount namespaces and setpriv need root"; exit 77; fi
source_dir="$(realpath "$1")"
build_dir="$(realpath "$2")"
containerfile="$source_dir/packaging/container/Containerfile"

failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() {
  local what="$1"; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
die() { echo "FAIL: $*"; exit 1; }

pids=()
work="$(mktemp -d)"
cleanup() {
  local pid
  # unshare --fork ignores SIGTERM while it waits: stop the coordinator under it first.
  for pid in "${pids[@]}"; do kill $(pgrep -P "$pid") "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
# The image's user must reach the programs and configuration below.
chmod 0755 "$work"

for builder in podman buildah; do
  if command -v "$builder" >/dev/null; then
    echo "note: $builder is installed, but the base image (docker.io/library/debian:12-slim)" \
      "is not reachable from here; building the root filesystem by the same steps instead"
  fi
done

debs="$("$source_dir/scripts/build-debs.sh" --build-dir "$build_dir" --no-build --out "$work/debs")" ||
  die "scripts/build-debs.sh failed"
deb="$(echo "$debs" | grep '/tended-coordinator_')"
[ -f "$deb" ] || die "no tended-coordinator .deb"

# FROM debian:12-slim: a base system's user and package databases. Its libraries are this
# Debian 12 machine's, which is what apt in the image would install for the Depends.
root="$work/rootfs"
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'root:*:20000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:*::\n' >"$root/etc/gshadow"
: >"$root/var/lib/dpkg/status"

# The Containerfile's user step, its continuation lines joined, the tools aimed at the root.
user_step="$(sed -n '/^RUN groupadd/,/[^\\]$/p' "$containerfile" | sed 's/\\$//' | tr '\n' ' ' |
  sed -e 's/^RUN //' -e "s|groupadd |groupadd --prefix $root |" -e "s|useradd |useradd --prefix $root |")"
[ -n "$user_step" ] || die "the Containerfile has no RUN groupadd ... useradd step"
echo "+ $user_step"
eval "$user_step" || die "the Containerfile's user step failed"

# The install step: apt-get install of the .deb; here real dpkg, dependencies not unpacked.
dpkg --root="$root" --force-script-chrootless --force-depends --log="$work/dpkg.log" \
  --no-triggers -i "$deb" >"$work/install.out" 2>&1 || { cat "$work/install.out"; die "dpkg -i failed"; }

user_line="$(grep '^tended:' "$root/etc/passwd")"
check "the image's user is tended, uid and gid 10001 (postinst kept it): $user_line" \
  grep -q '^tended:x:10001:10001:' <<<"$user_line"
check "one user tended" test "$(grep -c '^tended:' "$root/etc/passwd")" = 1
check "the state folder is tended's, 0700" \
  test "$(stat -c '%a %u:%g' "$root/var/lib/tended-coordinator")" = "700 10001:10001"
owned="$(cd "$root" && find . \( -uid 10001 -o -gid 10001 \) -print)"
check "the state folder is the only thing the image's user owns" \
  test "$owned" = "./var/lib/tended-coordinator"
writable="$(cd "$root" && find . -perm -0002 ! -type l -print)"
check "nothing in the root is world-writable${writable:+: $writable}" test -z "$writable"

entrypoint="$(sed -n 's/^ENTRYPOINT //p' "$containerfile" |
  /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')"
command="$(sed -n 's/^CMD //p' "$containerfile" |
  /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')"
check "ENTRYPOINT $entrypoint is an installed program" test -x "$root$entrypoint"
config_path="$(tr ' ' '\n' <<<"$command" | sed -n 's/^--config=//p')"
check "CMD's configuration $config_path is installed" test -f "$root$config_path"
missing_libs="$(ldd "$root$entrypoint" | grep 'not found' || true)"
check "every library of $entrypoint is in Debian 12${missing_libs:+: $missing_libs}" \
  test -z "$missing_libs"

# --- The pod: read-only root, the ConfigMap, the service account, the fake API server ------
if ! probe="$(unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /run' 2>&1)"; then
  if [ "$failures" -ne 0 ]; then
    echo "container_rootfs_test: $failures checks failed"
    exit 1
  fi
  echo "SKIP: the root filesystem checks passed, but the in-cluster run needs a private mount"
  echo "namespace (unshare --mount, mount), which this machine refuses: $probe"
  exit 77
fi
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for_file() {  # bounded, generous
  local i
  for i in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

# The reference cluster's five nodes, and its CNI DaemonSet as the configuration names it.
cni="$(/usr/bin/python3 -c 'import sys, yaml
ds = yaml.safe_load(open(sys.argv[1]))["kubernetes"]["cni_daemonset"]
print(ds["namespace"] + "/" + ds["name"])' "$source_dir/packaging/kubernetes/coordinator.yaml")"
"$build_dir/tests/fake-kube-apiserver" \
  --nodes=k8s-master,k8s-node1,k8s-node2,k8s-node3,k8s-node4 --daemonsets="$cni" \
  --kubeconfig_out="$work/fake.kubeconfig" >"$work/fake.log" 2>&1 &
pids+=($!)
wait_for_file "$work/fake.kubeconfig" || die "the fake API server did not start: $(cat "$work/fake.log")"
backend_port="$(sed -n 's|.*server: http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/fake.kubeconfig")"

# The cluster's CA and the API server's certificate for 127.0.0.1.
(cd "$work" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
    -subj /CN=fake-cluster-ca &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=kube-apiserver &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt) >"$work/openssl.log" 2>&1 ||
  die "openssl: $(cat "$work/openssl.log")"
/usr/bin/python3 "$source_dir/tests/packaging/tls_proxy.py" "$work/server.crt" "$work/server.key" \
  "$backend_port" "$work/proxy.port" "$work/proxy.log" >"$work/proxy.out" 2>&1 &
pids+=($!)
wait_for_file "$work/proxy.port" || die "the TLS front did not start: $(cat "$work/proxy.out")"
api_port="$(cat "$work/proxy.port")"

# What kubelet mounts into the pod.
token="token-$RANDOM$RANDOM"
mkdir -p "$work/serviceaccount"
echo -n "$token" >"$work/serviceaccount/token"
cp "$work/ca.crt" "$work/serviceaccount/ca.crt"
echo -n tended >"$work/serviceaccount/namespace"
chmod 0644 "$work/serviceaccount/"*
# The Secret tended-coordinator-tls as docs/install.md makes it (tendedctl certs from the
# image) and as kubelet projects it with fsGroup: files root's, the key 0440 root:10001.
tendedctl="$root/usr/bin/tendedctl"
"$tendedctl" certs --out "$work/pki" --operators ci:admin >"$work/certs.log" 2>&1 ||
  die "tendedctl certs: $(cat "$work/certs.log")"
mkdir -p "$work/secret/tls"
cp "$work/pki/coordinator.crt" "$work/secret/tls/tls.crt"
cp "$work/pki/coordinator.key" "$work/secret/tls/tls.key"
cp "$work/pki/ca.crt" "$work/secret/tls/ca.crt"
chmod 0755 "$work/secret" "$work/secret/tls"
chmod 0444 "$work/secret/tls/tls.crt" "$work/secret/tls/ca.crt"
chown root:10001 "$work/secret/tls/tls.key" && chmod 0440 "$work/secret/tls/tls.key"
# The ConfigMap, its tls: paths (the Secret's mount, /etc/tended/tls/) moved to that copy.
mkdir -p "$work/configmap"
sed "s|/etc/tended/tls/|$work/secret/tls/|" "$source_dir/packaging/kubernetes/coordinator.yaml" \
  >"$work/configmap/coordinator.yaml"
chmod 0755 "$work/configmap" && chmod 0644 "$work/configmap/coordinator.yaml"
check "the ConfigMap's tls: section names the Secret's files" \
  test "$(grep -c "$work/secret/tls/" "$work/configmap/coordinator.yaml")" = 3

grpc_port="$(free_port)"
metrics_port="$(free_port)"
# Inside a private mount namespace: the whole root read-only, then what the pod has
# writable or mounted: /run (the service account under /var/run/secrets) and the state
# volume at the configuration's state_dir (/var/lib/tended-coordinator), owned by fsGroup.
# The ports move to free ones on loopback (--listen and --metrics-listen override them).
unshare --mount --propagation private --fork --kill-child=SIGTERM sh -c '
  set -e
  mount -o remount,bind,ro /
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/secrets/kubernetes.io/serviceaccount
  cp "$1"/serviceaccount/* /run/secrets/kubernetes.io/serviceaccount/
  mount -t tmpfs -o mode=0755 tmpfs /var/lib
  mkdir -m 0700 /var/lib/tended-coordinator
  chown 10001:10001 /var/lib/tended-coordinator
  exec setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=-all --no-new-privs \
    env -i PATH=/usr/bin:/bin KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$2" \
    "$3" --config="$1/configmap/coordinator.yaml" \
    --listen="127.0.0.1:$4" --metrics-listen="127.0.0.1:$5"
' sh "$work" "$api_port" "$root$entrypoint" "$grpc_port" "$metrics_port" \
  >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=("$coordinator_pid")

operator=(--cert "$work/pki/operator-ci.crt" --key "$work/pki/operator-ci.key"
  --ca "$work/pki/ca.crt" --address "127.0.0.1:$grpc_port")
gates=""
for i in $(seq 1 120); do
  gates="$(timeout 10 "$tendedctl" "${operator[@]}" gates reboot 2>&1)"
  grep -q 'the API (in-cluster) answers; 5 nodes' <<<"$gates" && break
  kill -0 "$coordinator_pid" 2>/dev/null || break
  sleep 0.5
done
check "the coordinator reads the API in-cluster over TLS: 'the API (in-cluster) answers; 5 nodes'" \
  grep -q 'the API (in-cluster) answers; 5 nodes' <<<"$gates"
check "it sent the service-account token" grep -qx "Authorization: Bearer $token" "$work/proxy.log"
check "it listed the nodes through the TLS front" grep -q '^GET /api/v1/nodes' "$work/proxy.log"
check "no TLS handshake failed (the CA from ca.crt verified the server)" \
  bash -c '! grep -q "handshake failed" "$1"' _ "$work/proxy.log"
check "it logged the in-cluster API address" \
  grep -q "Kubernetes API at https://127.0.0.1:$api_port (in-cluster)" "$work/coordinator.log"
check "its gRPC service answers an operator over mTLS as the image's user on a read-only root" \
  timeout 10 "$tendedctl" "${operator[@]}" nodes
check "it serves mTLS with the Secret's files (its log says so)" \
  grep -q "over mTLS (certificate $work/secret/tls/tls.crt" "$work/coordinator.log"
check "a plaintext client gets nothing" \
  bash -c '! timeout 20 "$1" --insecure --address "127.0.0.1:$2" nodes' _ "$tendedctl" "$grpc_port"
check "it did not serve plaintext (no INSECURE warning)" \
  bash -c '! grep -q "INSECURE" "$1"' _ "$work/coordinator.log"
check "it wrote nothing outside its state (no read-only file system error)" \
  bash -c '! grep -qi "read-only file system" "$1"' _ "$work/coordinator.log"
check "the coordinator is still running" kill -0 "$coordinator_pid"

if [ "$failures" -ne 0 ]; then
  echo "--- gates:"; echo "$gates"
  echo "--- coordinator log:"; tail -40 "$work/coordinator.log"
  echo "--- TLS front log:"; tail -20 "$work/proxy.log"
  echo "container_rootfs_test: $failures checks failed"
  exit 1
fi
echo "container_rootfs_test: all checks passed"
