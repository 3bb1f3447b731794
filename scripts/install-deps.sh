#!/usr/bin/env bash
# Installs the Debian 12 packages tended needs to build, test and run its demo, and only
# those that are missing. Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libsystemd-dev libapt-pkg-dev libssl-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libre2-dev nlohmann-json3-dev libyaml-cpp-dev
  tzdata ca-certificates
  # Real components the tests start on loopback, and the tools that build test packages.
  prometheus dpkg-dev apt-utils gnupg lz4 unattended-upgrades etcd-server etcd-client
  # The packaging tests: lintian on the .deb files, PyYAML for the Kubernetes manifests.
  lintian python3 python3-yaml openssl
  # The Kubernetes demo: curl waits for its package repository and etcd.
  curl
  # scripts/sanitize.sh and scripts/fuzz.sh: clang with its sanitizer and libFuzzer runtimes.
  clang libclang-rt-14-dev
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Keep package services (prometheus, etcd) from starting on install: tests start their own.
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
  $SUDO chmod +x "$policy_rc"
  created_policy=1
fi
cleanup() { if [ $created_policy -eq 1 ]; then $SUDO rm -f "$policy_rc"; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
