#!/usr/bin/env bash
# Installs the Debian packages doppel builds, tests and benchmarks with.
# Idempotent: when every package is already present it touches nothing (no apt-get update).
set -euo pipefail

PACKAGES=(
  build-essential cmake make pkg-config git clang-format
  librocksdb-dev
  libflatbuffers-dev flatbuffers-compiler
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev uuid-dev
  libzmq3-dev cppzmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libeigen3-dev libode-dev liburdfdom-dev libboost-dev
  cyclonedds-dev cyclonedds-tools
  redis-server libhiredis-dev nats-server libnats-dev
  linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
