#!/usr/bin/env bash
# tally-load against h2load on the same Tally (`tally serve --bench-echo`, release build):
# server pinned to CPU 0, the load generator (one thread) to CPU 1, same connections and
# streams, the same 39-byte Echo request. Prints both numbers and their ratios:
#   throughput: closed loop, C connections x M streams, D seconds after a 1 s warm-up;
#   latency:    fixed rates (h2load --rps per connection = tally-load --rps in total), mean.
#               tally-load times a call from its scheduled send (so its own lateness is not
#               hidden) and also reports the mean from the actual send (its HEADERS frame going
#               to the socket), which is how h2load times it: that pair is compared like for
#               like, and the scheduled figure shown.
#               h2load's --rps holds a fixed rate only at low rates: from about 250/s on one
#               connection its rate timer sends most requests back to back in bursts (each right
#               after the previous response, on a hot thread), so its mean there is mostly
#               closed-loop latency, not latency at that rate. The script reads h2load's
#               --log-file and prints the share of requests it sent in bursts; the comparison
#               holds where that share is near 0% (e.g. 100/s).
#               With several connections h2load's per-connection rate timers fire in phase and
#               send in bursts (its mean at 4 x 1,000/s is about twice its mean at 1 x 2,000/s
#               here), so one connection is the fair comparison; 4 x 1,000/s is shown too.
# Near idle, h2load's own per-request work is part of its figure: per request it makes about
# 4 more syscalls than tally-load (strace -c: it re-arms its write watcher with epoll_ctl twice,
# waits one more epoll pass to write, re-reads the -d body file with pread64, and ends each
# read with an EAGAIN).
# Loopback only; bounded (ROUNDS x (2 x (D+1) + 2 x points x (LAT_D+1)) seconds).
#
#   tools/bench/load_vs_h2load.sh [ROUNDS]   env: CONNS=16 STREAMS=32 DURATION=8
#                                            LAT_POINTS="1:100 1:1000 1:4000 4:1000" (connections:rate per
#                                            connection) LAT_DURATION=5
#                                            TALLY_LOAD=path (another tally-load build, e.g. a
#                                            copy of an older one, for before/after numbers)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
CONNS=${CONNS:-16} STREAMS=${STREAMS:-32} DURATION=${DURATION:-8}
LAT_POINTS=${LAT_POINTS:-"1:100 1:1000 1:4000 4:1000"} LAT_DURATION=${LAT_DURATION:-5}
PORT=${PORT:-50062}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
TALLY_LOAD=${TALLY_LOAD:-.build/release/tally-load}
OUT=$(mktemp -d /tmp/tally-load-vs-h2load.XXXXXX)

command -v h2load > /dev/null || apt-get install -y -qq nghttp2-client > /dev/null
swift build -c release --product tally > /dev/null
swift build -c release --product tally-load > /dev/null

BODY=$OUT/echo_req_32.bin
printf '\x00\x00\x00\x00\x22\x0a\x20%s' "$(printf 'x%.0s' {1..32})" > "$BODY"
URL="http://127.0.0.1:$PORT/bench.v1.Echo/Echo"
H2=(h2load -t 1 -d "$BODY" -H 'content-type: application/grpc' -H 'te: trailers')
TL=("$TALLY_LOAD" bench.v1.Echo/Echo --target "127.0.0.1:$PORT" --threads 1 --format json)

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT INT TERM
taskset -c "$SERVER_CPU" .build/release/tally serve --bench-echo --port "$PORT" --event-loops 1 --log-level warning \
  > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

h2_tput() { timeout 120 taskset -c "$CLIENT_CPU" "${H2[@]}" -c "$CONNS" -m "$STREAMS" -D "$DURATION" --warm-up-time=1 "$URL"; }
tl_tput() { timeout 120 taskset -c "$CLIENT_CPU" "${TL[@]}" --connections "$CONNS" --streams "$STREAMS" -z "${DURATION}s" --warmup 1s; }
h2_lat() {
  timeout 120 taskset -c "$CLIENT_CPU" "${H2[@]}" -c "$1" -m 1 --rps "$2" -D "$LAT_DURATION" --warm-up-time=1 \
    --log-file="$3" "$URL"
}
tl_lat() {
  timeout 120 taskset -c "$CLIENT_CPU" "${TL[@]}" --connections "$1" --streams 1 --rps $(($1 * $2)) \
    -z "${LAT_DURATION}s" --warmup 1s
}

for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then order="h2 tl"; else order="tl h2"; fi
  for tool in $order; do
    "${tool}_tput" > "$OUT/$tool.tput.$round.txt" 2>&1 || { cat "$OUT/$tool.tput.$round.txt" >&2; exit 1; }
    for point in $LAT_POINTS; do
      file="$OUT/$tool.lat.${point/:/x}.$round.txt"
      "${tool}_lat" "${point%%:*}" "${point##*:}" "${file%.txt}.log" > "$file" 2>&1 || { cat "$file" >&2; exit 1; }
    done
  done
done

python3 - "$OUT" "$ROUNDS" "$CONNS" "$STREAMS" "$LAT_POINTS" <<'PY'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
conns, streams, points = sys.argv[3], sys.argv[4], sys.argv[5].split()
def h2(path):
    text = open(path).read()
    m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    t = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    ok = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored", text)
    if ok and (int(ok.group(2)) or int(ok.group(3))): sys.exit(f"h2load reported failures in {path}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[t.group(2)]
    return float(m.group(1)), float(t.group(1)) * scale
def tl(path):
    text = open(path).read()
    report = json.loads(text[text.index("{"):])
    total = report["total"]
    if total["errors"]: sys.exit(f"tally-load reported errors in {path}")
    latency = total["latency_ms"]
    return total["calls_per_second"], latency["mean"], latency["from_send_mean"]
def h2_bursts(path, conns, rate):
    # Share of h2load's requests sent less than half an interval after the previous one on
    # their connection: 0 when it paces evenly, high when its rate timer sends in bursts.
    interval = 1e6 / rate
    starts = sorted(int(line.split("\t")[0]) for line in open(path) if line.strip())
    if conns > 1: return None  # the log does not say which connection sent a request
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return sum(1 for g in gaps if g < interval / 2) / max(1, len(gaps))
res = {k: [] for k in ("h2_tput", "tl_tput")}
for r in range(1, rounds + 1):
    res["h2_tput"].append(h2(f"{out}/h2.tput.{r}.txt")[0])
    res["tl_tput"].append(tl(f"{out}/tl.tput.{r}.txt")[0])
med = {k: statistics.median(v) for k, v in res.items()}
print(f"rounds: {rounds}; raw output in {out}")
print(f"throughput (-c {conns} -m {streams}, closed loop): h2load {med['h2_tput']:,.0f} req/s, "
      f"tally-load {med['tl_tput']:,.0f} req/s -> x{med['tl_tput']/med['h2_tput']:.3f} (bar >= 0.9)")
print(f"  per round: h2load {[round(x) for x in res['h2_tput']]}, tally-load {[round(x) for x in res['tl_tput']]}")
for point in points:
    lat_conns, lat_rps = (int(x) for x in point.split(":"))
    tag = point.replace(":", "x")
    h2l = [h2(f"{out}/h2.lat.{tag}.{r}.txt")[1] for r in range(1, rounds + 1)]
    tls = [tl(f"{out}/tl.lat.{tag}.{r}.txt")[1] for r in range(1, rounds + 1)]
    tlf = [tl(f"{out}/tl.lat.{tag}.{r}.txt")[2] for r in range(1, rounds + 1)]
    mh, ms, mf = statistics.median(h2l), statistics.median(tls), statistics.median(tlf)
    bursts = [h2_bursts(f"{out}/h2.lat.{tag}.{r}.log", lat_conns, lat_rps) for r in range(1, rounds + 1)]
    print(f"latency mean at {lat_conns * lat_rps} req/s ({lat_conns} connection{'s' if lat_conns > 1 else ''}, 1 stream each): "
          f"h2load {mh*1000:.1f} us, tally-load from the actual send {mf*1000:.1f} us -> {100*(mf/mh-1):+.1f}% (bar within 10%); "
          f"from the scheduled send {ms*1000:.1f} us ({100*(ms/mh-1):+.1f}%)")
    print(f"  per round (us): h2load {[round(x*1000,1) for x in h2l]}, tally-load from send {[round(x*1000,1) for x in tlf]}, "
          f"scheduled {[round(x*1000,1) for x in tls]}")
    if bursts[0] is not None:
        print(f"  h2load pacing: {100*statistics.median(bursts):.0f}% of its requests sent less than half an interval "
              f"after the previous one (0% = evenly paced, as tally-load sends)")
PY
