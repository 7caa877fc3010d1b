#!/usr/bin/env bash
# Storage engine benchmarks against the local PostgreSQL/Redis (tools/services.sh), release build.
#
#   tools/bench/storage.sh                 every benchmark
#   tools/bench/storage.sh postgres [...]  one, with its options (e.g. --rows 200000)
#
# Numbers are printed, with the same-run baseline each one is compared to.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/services.sh start
set -a; source .tally/services.env; set +a
swift build -c release --product StorageBench > /dev/null
BIN=$(swift build -c release --show-bin-path)/StorageBench
if [[ $# -gt 0 ]]; then
  "$BIN" "$@"
else
  for bench in postgres; do "$BIN" "$bench"; done
fi
