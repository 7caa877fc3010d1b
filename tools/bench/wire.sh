#!/usr/bin/env bash
# Wire speed: bench.v1.Echo/Echo on Tally beside the reference servers in ../shared/peers
# (gRPC C++ async and callback, the nghttpd static ceiling), the same h2load load for all:
# server pinned to CPU 0, h2load to CPU 1, rounds rotated; prints the medians and Tally's
# ratios to C++ from the same run. Loopback only; bounded (ROUNDS x ~15 s per server).
#
#   tools/bench/wire.sh [ROUNDS]        (default 3; PEERS=path to shared/peers)
#   BASELINE_BIN=path tools/bench/wire.sh   also another tally build (e.g. before a change) as
#                                       peer tally-baseline in the same rotated rounds: A/B
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${1:-3}
PEERS=${PEERS:-$ROOT/../shared/peers}
[[ -x "$PEERS/run_all.sh" ]] || { echo "peers not found at $PEERS (set PEERS=)" >&2; exit 2; }

bash tools/install-deps.sh
NEED=()
for pkg in libgrpc++-dev protobuf-compiler-grpc nghttp2-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || NEED+=("$pkg")
done
if [[ ${#NEED[@]} -gt 0 ]]; then apt-get install -y -qq "${NEED[@]}" > /dev/null; fi
[[ -x "$PEERS/grpc-cpp-echo/build/echo_server" ]] || make -s -C "$PEERS/grpc-cpp-echo"
swift build -c release --product tally > /dev/null

TALLY="$ROOT/.build/release/tally serve --bench-echo --port 50060 --event-loops 1 --log-level warning"
ONLY="grpc-cpp-echo/async,grpc-cpp-echo/callback,nghttpd-ceiling,tally"
BASELINE=()
if [[ -n ${BASELINE_BIN:-} ]]; then
  ONLY+=",tally-baseline"
  BASELINE=(--peer "tally-baseline|50061||$BASELINE_BIN serve --bench-echo --port 50061 --event-loops 1 --log-level warning")
fi
"$PEERS/run_all.sh" --rounds "$ROUNDS" --only "$ONLY" \
  --peer "tally|50060||$TALLY" "${BASELINE[@]}" | tee /tmp/tally-wire-bench.log
RESULTS=$(sed -n 's/^results: //p' /tmp/tally-wire-bench.log | tail -1)

python3 - "$RESULTS/summary.tsv" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows.setdefault((f[0], f[1]), []).append((float(f[2]), float(f[3]), float(f[6])))
def med(label, run, i):
    xs = rows.get((label, run))
    return statistics.median(x[i] for x in xs) if xs else float("nan")
t = "tally"
print("\nTally vs gRPC C++ (same run, medians):")
for ref in ["grpc-cpp-echo/callback", "grpc-cpp-echo/async"]:
    print(f"  vs {ref:24s} req/s x{med(t,'tput',0)/med(ref,'tput',0):.2f}   "
          f"p99 {med(t,'tput',2):.2f} ms vs {med(ref,'tput',2):.2f} ms (x{med(t,'tput',2)/med(ref,'tput',2):.2f})   "
          f"c1m1 mean {1000*med(t,'lat',1):.0f} us vs {1000*med(ref,'lat',1):.0f} us")
print(f"  nghttpd ceiling: {med('nghttpd-ceiling','tput',0):,.0f} req/s, c1m1 mean {1000*med('nghttpd-ceiling','lat',1):.0f} us")
if ("tally-baseline", "tput") in rows:
    b = "tally-baseline"
    print(f"  this build vs the baseline build: req/s x{med(t,'tput',0)/med(b,'tput',0):.2f} "
          f"({med(t,'tput',0):,.0f} vs {med(b,'tput',0):,.0f}), c1m1 mean {1000*med(t,'lat',1):.0f} us vs {1000*med(b,'lat',1):.0f} us")
PY
