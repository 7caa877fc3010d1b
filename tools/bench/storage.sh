#!/usr/bin/env bash
# Storage engine benchmarks against the local PostgreSQL/Redis (tools/services.sh), release build.
#
#   tools/bench/storage.sh                 every benchmark
#   tools/bench/storage.sh postgres [...]  one, with its options (e.g. --rows 200000)
#
# Numbers are printed, with the same-run baseline each one is compared to.
set -euo pipefail
cd "$(dirname "$0")/../.."
# A set of services of its own, emptied first: keys and AOF rewrites left by tests would
# otherwise slow Redis down by 2x and more (seen here).
export TALLY_STATE_DIR=$PWD/.tally/bench
bash tools/services.sh start > /dev/null
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
redis-cli -p "$TALLY_REDIS_PORT" flushall > /dev/null
swift build -c release --product StorageBench > /dev/null
BIN=$(swift build -c release --show-bin-path)/StorageBench
if [[ $# -gt 0 ]]; then
  "$BIN" "$@"
else
  for bench in postgres rate-limit queue; do "$BIN" "$bench"; done
  # Same-run baseline for the Redis engines: Redis' own command rate on this machine.
  echo "redis-benchmark baseline (same Redis, 50 clients, pipeline 16):"
  redis-benchmark -h 127.0.0.1 -p "$TALLY_REDIS_PORT" -q -n 200000 -c 50 -P 16 -t set,incr | sed 's/^/  /'
fi
