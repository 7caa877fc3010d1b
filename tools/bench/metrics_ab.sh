#!/usr/bin/env bash
# What the per-call metrics cost on the wire: bench.v1.Echo/Echo on one release build with call
# metrics on (the default) and off (--no-call-metrics), the same h2load load through
# ../shared/peers/run_all.sh (server pinned to CPU 0, h2load to CPU 1, rounds rotated so drift
# favours neither); prints the medians and on/off. Loopback only; bounded (ROUNDS x ~15 s each).
#
#   tools/bench/metrics_ab.sh [ROUNDS]        (default 3; PEERS=path to shared/peers)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${1:-3}
PEERS=${PEERS:-$ROOT/../shared/peers}
[[ -x "$PEERS/run_all.sh" ]] || { echo "peers not found at $PEERS (set PEERS=)" >&2; exit 2; }
bash tools/install-deps.sh
swift build -c release --product tally > /dev/null

SERVE="$ROOT/.build/release/tally serve --bench-echo --event-loops 1 --log-level warning"
"$PEERS/run_all.sh" --rounds "$ROUNDS" --only "metrics-on,metrics-off" \
  --peer "metrics-on|50061||$SERVE --port 50061" \
  --peer "metrics-off|50062||$SERVE --port 50062 --no-call-metrics" | tee /tmp/tally-metrics-ab.log
RESULTS=$(sed -n 's/^results: //p' /tmp/tally-metrics-ab.log | tail -1)

python3 - "$RESULTS/summary.tsv" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows.setdefault((f[0], f[1]), []).append((float(f[2]), float(f[3]), float(f[6])))
def med(label, run, i):
    xs = rows.get((label, run))
    return statistics.median(x[i] for x in xs) if xs else float("nan")
on, off = med("metrics-on", "tput", 0), med("metrics-off", "tput", 0)
print(f"\nEcho req/s, medians: metrics on {on:,.0f}, off {off:,.0f}: on/off = {on / off:.3f}")
print(f"p99 ms: on {med('metrics-on', 'tput', 2):.2f}, off {med('metrics-off', 'tput', 2):.2f}; "
      f"c1m1 mean: on {1000 * med('metrics-on', 'lat', 1):.0f} us, off {1000 * med('metrics-off', 'lat', 1):.0f} us")
PY
