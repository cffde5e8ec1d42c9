#!/usr/bin/env bash
# Installs the Debian packages doppel builds, tests and benchmarks with, then the npm packages.
# Idempotent: when every package is already present it touches nothing (no apt-get update).
set -euo pipefail

PACKAGES=(
  build-essential cmake make pkg-config git clang-format
  # `make fuzz`: clang 14 and its compiler-rt (libFuzzer, ASan, UBSan runtimes), which clang
  # only recommends.
  clang libclang-rt-dev
  librocksdb-dev
  libflatbuffers-dev flatbuffers-compiler
  # MCAP chunk compression (mcap/): LZ4 frames and zstd.
  liblz4-dev libzstd-dev
  # MCAP import: BLAKE2b of a file's bytes names its events (crypto_generichash).
  libsodium-dev
  libre2-dev  # MCAP import: --robot-from-topic over the file's topics in linear time (RE2)
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev uuid-dev
  libzmq3-dev cppzmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libeigen3-dev libode-dev liburdfdom-dev libboost-dev
  cyclonedds-dev cyclonedds-tools libfastrtps-dev fastddsgen
  redis-server libhiredis-dev nats-server libnats-dev
  linux-perf
  chromium fonts-liberation
  # metrics_prometheus_test scrapes doppel with a real Prometheus; promtool checks deploy/prometheus.
  prometheus
  # PostgreSQL as a store (pgstore/): libpq to build, and a server the tests run themselves.
  postgresql-15 libpq-dev
)
# Node.js runs the front-end package installs, the Foxglove-client and browser tests and the
# Node side of the gateway benchmark; Debian's when the machine has none.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start PostgreSQL servers of their own; Debian's package would otherwise create
  # (and, where it can, start) a system-wide cluster nobody uses.
  if [ ! -e /etc/postgresql-common/createcluster.d/doppel.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/doppel.conf >/dev/null
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Front-end and test packages from the npm registry, pinned by each package-lock.json:
# the dashboard's (three, uPlot) and the Node tests' (@foxglove/ws-protocol, ws,
# playwright-core, roslib; for MCAP @mcap/core, @mcap/support, @foxglove/rosmsg,
# @foxglove/rosmsg2-serialization, ajv, lz4js). Skipped when node_modules matches the lock already.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
for dir in bridges/ws/web tests/node; do
  lock="$ROOT/$dir/package-lock.json"
  stamp="$ROOT/$dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
