#!/usr/bin/env bash
# Installs the Debian packages Tally builds, runs and tests with (only those missing).
# Used by tools/run.sh and tools/test.sh; safe to run again.
set -euo pipefail

PACKAGES=(
  libnghttp2-dev        # HTTP/2 (nghttp2 1.52)
  libprotobuf-c-dev     # protobuf runtime (protobuf-c)
  protobuf-c-compiler   # protoc-c, for tools/codegen/generate.sh
  protobuf-compiler     # protoc, for the descriptor set
  libprotobuf-dev       # google/protobuf/*.proto includes
  libpq-dev             # PostgreSQL client (libpq)
  libhiredis-dev        # Redis client (hiredis)
  zlib1g-dev            # gzip message compression
  libtcmalloc-minimal4  # malloc for the tally binary (see Package.swift)
  postgresql            # local PostgreSQL server for runs and tests
  redis-server          # local Redis server for runs and tests
  nghttp2-client        # h2load and nghttp, for benchmarks and probes
  haproxy               # the load balancer of tools/scale/haproxy.sh (run by tools/test.sh)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
