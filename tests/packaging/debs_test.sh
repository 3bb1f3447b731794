#!/usr/bin/env bash
# Builds tended-agent and tended-coordinator with scripts/build-debs.sh from an existing build
# and checks them: contents, modes and owners, conffiles, Depends from dpkg-shlibdeps,
# lintian (every tag it still reports must be explained in docs/packaging.md), then real
# dpkg installs them into a throwaway root (its own admin folder, maintainer scripts run
# chrootless with DPKG_ROOT set; the host's dpkg database is never used), and checks the
# state folders, the units enabled but nothing started, conffiles kept on upgrade, remove
# keeping state and purge deleting it, and `systemd-analyze verify` on the installed units.
#
#   tests/packaging/debs_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: dpkg --root needs root"; exit 77; fi
source_dir="$(realpath "$1")"
build_dir="$(realpath "$2")"

failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
die() { echo "FAIL: $*"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

debs="$("$source_dir/scripts/build-debs.sh" --build-dir "$build_dir" --no-build --out "$work/debs")" ||
  die "scripts/build-debs.sh failed"
agent_deb="$(echo "$debs" | grep '/tended-agent_')"
coordinator_deb="$(echo "$debs" | grep '/tended-coordinator_')"
[ -f "$agent_deb" ] && [ -f "$coordinator_deb" ] || die "build-debs.sh printed no .deb files: $debs"
pass "built $(basename "$agent_deb") and $(basename "$coordinator_deb")"

# --- Contents, modes and owners, as dpkg-deb lists them ---------------------------------
contents() {  # "mode owner path" per file, directories left out
  dpkg-deb --contents "$1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $1, $2, $6 }' | sort
}
expected_agent="$(sort <<'EOF'
-rw-r--r-- root/root /etc/tended/agent.yaml
-rw-r--r-- root/root /lib/systemd/system/tended-agent.service
-rw-r--r-- root/root /usr/share/doc/tended-agent/changelog.gz
-rw-r--r-- root/root /usr/share/doc/tended-agent/copyright
-rw-r--r-- root/root /usr/share/man/man8/tended-agent.8.gz
-rw-r--r-- root/root /usr/share/man/man8/tended-apt-engine.8.gz
-rwxr-xr-x root/root /usr/bin/tended-agent
-rwxr-xr-x root/root /usr/bin/tended-apt-engine
EOF
)"
expected_coordinator="$(sort <<'EOF'
-rw-r--r-- root/root /etc/tended/coordinator.yaml
-rw-r--r-- root/root /lib/systemd/system/tended-coordinator.service
-rw-r--r-- root/root /usr/lib/sysusers.d/tended.conf
-rw-r--r-- root/root /usr/share/doc/tended-coordinator/changelog.gz
-rw-r--r-- root/root /usr/share/doc/tended-coordinator/copyright
-rw-r--r-- root/root /usr/share/man/man1/tendedctl.1.gz
-rw-r--r-- root/root /usr/share/man/man8/tended-coordinator.8.gz
-rwxr-xr-x root/root /usr/bin/tended-coordinator
-rwxr-xr-x root/root /usr/bin/tendedctl
EOF
)"
check "tended-agent holds exactly its files, modes and owners" \
  diff <(echo "$expected_agent") <(contents "$agent_deb")
check "tended-coordinator holds exactly its files, modes and owners" \
  diff <(echo "$expected_coordinator") <(contents "$coordinator_deb")
bad_dirs="$(dpkg-deb --contents "$agent_deb" "$coordinator_deb" 2>/dev/null |
  awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "root/root")')"
check "every directory in the packages is root/root 0755" test -z "$bad_dirs"

for deb in "$agent_deb" "$coordinator_deb"; do
  package="$(dpkg-deb --field "$deb" Package)"
  depends="$(dpkg-deb --field "$deb" Depends)"
  check "$package Depends names libc6 with a version (from dpkg-shlibdeps): $depends" \
    grep -Eq '(^|, )libc6 \(>= [0-9.]+\)' <<<"$depends"
  check "$package Depends has no unfilled placeholder" bash -c '! grep -q "[@$]" <<<"$1"' _ "$depends"
  config="$(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ {print $6}' | grep '^./etc/tended/' |
    sed 's/^\.//')"
  check "$package declares $config as its one conffile" \
    test "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" = "$config"
  dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$work" ./usr/bin
  unstripped="$(for binary in "$work"/usr/bin/*; do
    readelf --sections "$binary" | grep -qE '\.(debug_info|symtab|comment)\b' && echo "$binary"
  done)"
  check "$package binaries are stripped (no .debug_info, .symtab, .comment)" test -z "$unstripped"
  rm -rf "$work/usr"
done
agent_libs="$(dpkg-deb --field "$agent_deb" Depends)"
check "tended-agent depends on libapt-pkg (tended-apt-engine links it)" grep -q 'libapt-pkg' <<<"$agent_libs"
check "tended-agent depends on libsystemd0 (sd_notify, logind)" grep -q 'libsystemd0' <<<"$agent_libs"
coordinator_libs="$(dpkg-deb --field "$coordinator_deb" Depends)"
check "tended-coordinator depends on libcurl (Prometheus, webhooks, Kubernetes)" grep -q 'libcurl' <<<"$coordinator_libs"
check "tended-coordinator depends on passwd (useradd in postinst) and tzdata" \
  grep -Eq 'passwd.*tzdata' <<<"$coordinator_libs"

# --- lintian ---------------------------------------------------------------------------
if command -v lintian >/dev/null; then
  tags="$(lintian --no-tag-display-limit --display-info "$agent_deb" "$coordinator_deb" 2>&1 |
    grep -E '^[EWIXP]: ' | awk '{print $3}' | sort -u)"
  echo "lintian tags: ${tags:-none}"
  explained="$(sed -n '/<!-- lintian-tags:begin -->/,/<!-- lintian-tags:end -->/p' \
    "$source_dir/docs/packaging.md")"
  for tag in $tags; do
    check "lintian tag $tag is explained in docs/packaging.md" grep -q "\`$tag\`" <<<"$explained"
  done
  errors="$(lintian "$agent_deb" "$coordinator_deb" 2>&1 | grep -E '^E: ' || true)"
  check "lintian reports no error" test -z "$errors"
  [ -z "$errors" ] || echo "$errors"
else
  echo "SKIP-PART: lintian is not installed (apt install lintian); its tags were not checked"
fi

# --- A throwaway root ------------------------------------------------------------------
root="$work/root"
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/run"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'root:*:20000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:*::\n' >"$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"

# A systemctl that only records its calls: with DPKG_ROOT set nothing may call it.
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "$*" >>"%s/systemctl.calls"\n' "$work" >"$work/bin/systemctl"
chmod +x "$work/bin/systemctl"
export PATH="$work/bin:$PATH"

dpkg_root() {
  # Dependencies are the host's libraries, not installed in the empty root.
  dpkg --root="$root" --force-script-chrootless --force-depends --log="$work/dpkg.log" \
    --no-triggers "$@"
}
status_of() { dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' "$1" 2>/dev/null; }
mode_owner() { stat -c '%a %u:%g' "$1"; }
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/passwd"; }

dpkg_root -i "$agent_deb" "$coordinator_deb" >"$work/install.out" 2>&1 ||
  { cat "$work/install.out"; die "dpkg -i into the throwaway root failed"; }
check "both packages are installed in the throwaway root's database" \
  test "$(status_of tended-agent)|$(status_of tended-coordinator)" = \
  "install ok installed|install ok installed"
check "the host's dpkg database does not know tended-agent" \
  bash -c '! dpkg-query -W tended-agent >/dev/null 2>&1'
for f in /usr/bin/tended-agent /usr/bin/tended-apt-engine /usr/bin/tended-coordinator \
  /usr/bin/tendedctl; do
  check "$f is installed, executable" test -x "$root$f"
done
check "tended-agent and tended-apt-engine sit in the same folder" \
  test "$(dirname "$root/usr/bin/tended-agent")" = "$(dirname "$root/usr/bin/tended-apt-engine")"
check "/etc/tended/agent.yaml is the reference configuration" \
  cmp -s "$root/etc/tended/agent.yaml" "$source_dir/packaging/examples/agent.yaml"
check "/etc/tended/coordinator.yaml is the reference configuration" \
  cmp -s "$root/etc/tended/coordinator.yaml" "$source_dir/packaging/examples/coordinator.yaml"
check "dpkg registered both conffiles" bash -c \
  'grep -A2 "^Conffiles:" "$1/var/lib/dpkg/status" | grep -c "^ /etc/tended/" | grep -qx 2' _ "$root"

check "postinst made /var/lib/tended root-only (0700 root)" \
  test "$(mode_owner "$root/var/lib/tended")" = "700 0:0"
tended_uid="$(uid_of tended)"
check "postinst created the system user tended (uid $tended_uid below 1000)" \
  test -n "$tended_uid" -a "${tended_uid:-1000}" -lt 1000
tended_gid="$(awk -F: '$1 == "tended" { print $3 }' "$root/etc/group")"
check "postinst made /var/lib/tended-coordinator 0700, owned by tended" \
  test "$(mode_owner "$root/var/lib/tended-coordinator")" = "700 $tended_uid:$tended_gid"
check "the coordinator's state folder is also its sysusers home" \
  grep -q ' /var/lib/tended-coordinator$' "$root/usr/lib/sysusers.d/tended.conf"

wants="$root/etc/systemd/system/multi-user.target.wants"
check "tended-agent.service is enabled (multi-user.target.wants)" \
  test "$(readlink "$wants/tended-agent.service")" = /lib/systemd/system/tended-agent.service
check "tended-coordinator.service is enabled (multi-user.target.wants)" \
  test "$(readlink "$wants/tended-coordinator.service")" = \
  /lib/systemd/system/tended-coordinator.service
check "nothing was started: no systemctl call while installing into another root" \
  test ! -e "$work/systemctl.calls"

# --- Upgrade: a changed conffile survives, an existing user and state are kept -----------
echo "# edited by the operator" >>"$root/etc/tended/agent.yaml"
echo "journal" >"$root/var/lib/tended/journal"
dpkg_root -i "$agent_deb" "$coordinator_deb" >"$work/upgrade.out" 2>&1 ||
  { cat "$work/upgrade.out"; fail "reinstalling over the installed packages failed"; }
check "reinstalling keeps the operator's edit of /etc/tended/agent.yaml" \
  grep -q '^# edited by the operator$' "$root/etc/tended/agent.yaml"
check "reinstalling keeps the agent's state" test -f "$root/var/lib/tended/journal"
check "reinstalling creates no second user" test "$(grep -c '^tended:' "$root/etc/passwd")" = 1

# --- Remove keeps state and configuration, purge deletes them ---------------------------
echo "journal" >"$root/var/lib/tended-coordinator/journal"
dpkg_root -r tended-agent tended-coordinator >"$work/remove.out" 2>&1 ||
  { cat "$work/remove.out"; fail "dpkg -r failed"; }
check "after remove the programs are gone" test ! -e "$root/usr/bin/tended-agent" -a \
  ! -e "$root/usr/bin/tended-coordinator"
check "after remove the agent's state is kept" test -f "$root/var/lib/tended/journal"
check "after remove the coordinator's state is kept" \
  test -f "$root/var/lib/tended-coordinator/journal"
check "after remove the conffiles are kept" test -f "$root/etc/tended/agent.yaml" -a \
  -f "$root/etc/tended/coordinator.yaml"
check "after remove tended-agent.service is masked" \
  test "$(readlink "$root/etc/systemd/system/tended-agent.service")" = /dev/null
check "after remove dpkg lists both as config-files" \
  test "$(status_of tended-agent)|$(status_of tended-coordinator)" = \
  "deinstall ok config-files|deinstall ok config-files"

dpkg_root -P tended-agent tended-coordinator >"$work/purge.out" 2>&1 ||
  { cat "$work/purge.out"; fail "dpkg -P failed"; }
check "purge deletes /var/lib/tended" test ! -e "$root/var/lib/tended"
check "purge deletes /var/lib/tended-coordinator" test ! -e "$root/var/lib/tended-coordinator"
check "purge deletes the conffiles" test ! -e "$root/etc/tended/agent.yaml" -a \
  ! -e "$root/etc/tended/coordinator.yaml"
check "purge unmasks and disables the units" test ! -e \
  "$root/etc/systemd/system/tended-agent.service" -a ! -e "$wants/tended-agent.service" -a \
  ! -e "$wants/tended-coordinator.service"
check "purge keeps the system user tended (Debian keeps system users)" test -n "$(uid_of tended)"
check "still nothing called systemctl" test ! -e "$work/systemctl.calls"

# --- systemd-analyze verify on the installed units -------------------------------------
# A root holding both packages and the units a Debian 12 node has (this machine's own, from
# systemd 252: sysinit.target, network-online.target, dbus.service, systemd-logind.service),
# so that --root resolves the dependencies and ExecStart= inside it.
verify_root="$work/verify-root"
mkdir -p "$verify_root/usr/lib/systemd"
dpkg-deb -x "$agent_deb" "$verify_root"
dpkg-deb -x "$coordinator_deb" "$verify_root"
if ! command -v systemd-analyze >/dev/null || [ ! -d /lib/systemd/system ]; then
  fail "systemd-analyze or the system's units are missing (apt install systemd)"
else
  cp -a /lib/systemd/system "$verify_root/usr/lib/systemd/"
  rm -f "$verify_root"/usr/lib/systemd/system/tended-*
  for unit in tended-agent.service tended-coordinator.service; do
    out="$(systemd-analyze verify --man=no --root="$verify_root" "$unit" 2>&1)"
    rc=$?
    check "systemd-analyze verify accepts $unit${out:+ (said: $out)}" test "$rc" -eq 0
  done
  # The same check fails when it should, or it proves nothing.
  mv "$verify_root/usr/bin/tended-agent" "$verify_root/usr/bin/tended-agent.away"
  out="$(systemd-analyze verify --man=no --root="$verify_root" tended-agent.service 2>&1)"
  check "systemd-analyze verify notices a missing ExecStart= program" \
    grep -q 'tended-agent is not executable' <<<"$out"
  mv "$verify_root/usr/bin/tended-agent.away" "$verify_root/usr/bin/tended-agent"
  sed -i 's/^Type=notify/Type=not-a-type/' "$verify_root/lib/systemd/system/tended-agent.service"
  out="$(systemd-analyze verify --man=no --root="$verify_root" tended-agent.service 2>&1)"
  check "systemd-analyze verify notices a broken unit" grep -q 'not-a-type' <<<"$out"
fi

if [ "$failures" -ne 0 ]; then
  echo "debs_test: $failures checks failed"
  exit 1
fi
echo "debs_test: all checks passed"
