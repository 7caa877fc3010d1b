#!/usr/bin/env bash
# Presence benchmark (release build) on a private PostgreSQL and Redis:
#   0. the machine's ceiling: Redis PUBLISH/s (redis-benchmark) in the same run;
#   1. memory: one instance, STREAMS (20,000) presence streams on a connection each, 10
#      subscriptions each, idle but for heartbeats: the server's RSS before and with the streams
#      open, and per stream (target: under 1 GiB, about 50 KiB per stream; printed, not asserted).
#      One load process holds at most PER_PROCESS (10,000) connections (its open-file limit);
#   2. delivery: two instances sharing Redis, USERS (2,000) users on a stream each, 10
#      subscribers per user, RATE (2,000) status changes/s in total (each user about once a
#      second) for SECONDS, PRESENCE_INTERVAL_MS 2000: delivery p50/p90/p99/max against the bar
#      (p99 <= interval + 100 ms), lost changes (must be 0), and the CPU each process used.
# Everything (servers, Redis, Postgres, load) shares this machine's cores. Bounded: every phase
# has a fixed duration, and the load tool ends its streams itself.
#
#   tools/bench/presence.sh [SECONDS of changes in phase 2, default 30]
#   PHASES="2" tools/bench/presence.sh     only some phases; STREAMS=5000 a smaller phase 1
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_OF_CHANGES=${1:-30}
PHASES=${PHASES:-0 1 2}
STREAMS=${STREAMS:-20000}
PER_PROCESS=${PER_PROCESS:-10000}
USERS=${USERS:-2000}
RATE=${RATE:-2000}
INTERVAL_MS=${PRESENCE_INTERVAL_MS:-2000}
runs() { [[ " $PHASES " == *" $1 "* ]]; }
# Every connection is a descriptor, in the servers and in the load processes.
ulimit -n "$(ulimit -Hn)"
export TALLY_STATE_DIR=$PWD/.tally/bench
bash tools/services.sh start > /dev/null
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
REDIS=(redis-cli -p "$TALLY_REDIS_PORT")
"${REDIS[@]}" flushall > /dev/null
swift build -c release --product tally > /dev/null
swift build -c release --product tally-load > /dev/null
BIN=$(swift build -c release --show-bin-path)
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { for _ in $(seq 200); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$1/stat"; }
SERVERS=()
LOADS=()
stop_all() { kill -TERM "${LOADS[@]}" "${SERVERS[@]}" 2> /dev/null || true; wait "${LOADS[@]}" "${SERVERS[@]}" 2> /dev/null || true; SERVERS=(); LOADS=(); }
trap 'stop_all; rm -rf "$WORK"' EXIT
serve() {  # serve PORT ID: one instance, presence streams and connections well above the load
  TALLY_MAX_CONNECTIONS=100000 PRESENCE_MAX_STREAMS=100000 PRESENCE_INTERVAL_MS=$INTERVAL_MS TALLY_INSTANCE_ID=$2 \
    "$BIN/tally" serve --host 127.0.0.1 --port "$1" --log-level warning > "$WORK/server-$2.log" 2>&1 &
  SERVERS+=($!)
  listening "$1"
}
# Other work on the machine skews every number here: say how busy it was as each phase began.
busy() { echo "load average (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), open-file limit $(ulimit -n) per process"

if runs 0; then
echo "== 0. ceiling: Redis PUBLISH (redis-benchmark, 50 clients, 200,000 messages of 40 bytes)"
busy
redis-benchmark -p "$TALLY_REDIS_PORT" -c 50 -n 200000 -q PUBLISH presence-bench 'ONLINE t=1764855123456789012 xxxxxxxxxx' \
  | tr '\r' '\n' | grep -E 'requests per second' | tail -n 1
fi

if runs 1; then
echo "== 1. memory: one instance, $STREAMS presence streams (a connection each, 10 subscriptions each), heartbeats only"
busy
"${REDIS[@]}" flushall > /dev/null
PORT=$(free_port)
serve "$PORT" a
SERVER=${SERVERS[0]}
sleep 2
before=$(rss_kib "$SERVER")
processes=$(( (STREAMS + PER_PROCESS - 1) / PER_PROCESS ))
RAMP=${RAMP:-$(( STREAMS / 500 + 5 ))}
for ((p = 0; p < processes; p++)); do
  first=$((p * PER_PROCESS))
  count=$(( STREAMS - first < PER_PROCESS ? STREAMS - first : PER_PROCESS ))
  "$BIN/tally-load" presence --target "127.0.0.1:$PORT" --streams "$count" --first-user "$first" --users "$STREAMS" \
    --subscriptions 10 --changes-per-sec 0 --ramp-up "${RAMP}s" -z 10s --interval "${INTERVAL_MS}ms" --threads 1 \
    --format json > "$WORK/idle-$p.json" 2> "$WORK/idle-$p.log" &
  LOADS+=($!)
done
# Each load process prints one line once its streams are open (or it gave up on the rest).
for ((p = 0; p < processes; p++)); do
  until grep -q 'presence streams open' "$WORK/idle-$p.log" 2> /dev/null || ! kill -0 "${LOADS[$p]}" 2> /dev/null; do sleep 0.5; done
done
sleep 2
with=$(rss_kib "$SERVER")
fds=$(ls "/proc/$SERVER/fd" | wc -l)
cat "$WORK"/idle-*.log | grep -v '^$' || true
wait "${LOADS[@]}" || true
LOADS=()
python3 - "$before" "$with" "$fds" "$STREAMS" "$WORK"/idle-*.json <<'PY'
import json, sys
before, with_, fds, wanted = (int(x) for x in sys.argv[1:5])
reports = [json.load(open(path)) for path in sys.argv[5:]]
open_ = sum(r["open_streams"] for r in reports)
ended = {}
for r in reports:
    for status, tally in r["ended"].items():
        entry = ended.setdefault(status, [0, tally["sample_message"]])
        entry[0] += tally["count"]
print(f"streams open: {open_:,} of {wanted:,} (server descriptors with them open: {fds:,})")
for status, (count, sample) in sorted(ended.items()):
    print(f"  streams ended {status}: {count:,}" + (f' ("{sample[:120]}")' if sample else ""))
grown = with_ - before
print(f"server RSS: {before / 1024:,.1f} MiB before, {with_ / 1024:,.1f} MiB with the streams open "
      f"(target under 1,024 MiB): {grown / max(open_, 1):,.1f} KiB per stream (target about 50)")
print(f"lost: {sum(r['lost'] for r in reports)} of {sum(r['checked'] for r in reports):,} subscriptions checked (no changes sent: every state is the Hello's ONLINE)")
PY
stop_all
fi

if runs 2; then
echo "== 2. delivery: two instances sharing Redis, $USERS users x 10 subscribers, $RATE changes/s for ${SECONDS_OF_CHANGES}s, PRESENCE_INTERVAL_MS $INTERVAL_MS"
busy
"${REDIS[@]}" flushall > /dev/null
"${REDIS[@]}" config resetstat > /dev/null
PORT_A=$(free_port)
serve "$PORT_A" a
PORT_B=$(free_port)
serve "$PORT_B" b
REDIS_PID=$("${REDIS[@]}" info server | tr -d '\r' | sed -n 's/^process_id://p')
cpu_before="$(cpu_seconds "${SERVERS[0]}") $(cpu_seconds "${SERVERS[1]}") $(cpu_seconds "$REDIS_PID")"
started=$(date +%s.%N)
"$BIN/tally-load" presence --target "127.0.0.1:$PORT_A,127.0.0.1:$PORT_B" --streams "$USERS" --subscriptions 10 \
  --changes-per-sec "$RATE" -z "${SECONDS_OF_CHANGES}s" --ramp-up 5s --interval "${INTERVAL_MS}ms" \
  --format json > "$WORK/delivery.json" 2> "$WORK/delivery.log" &
LOAD=$!
LOADS=("$LOAD")
# Sample the CPU the load itself used just before it exits (its /proc entry goes with it).
load_cpu=0
while kill -0 "$LOAD" 2> /dev/null; do load_cpu=$(cpu_seconds "$LOAD" 2> /dev/null || echo "$load_cpu"); sleep 0.5; done
wait "$LOAD" || true
LOADS=()
finished=$(date +%s.%N)
echo -n "at its end: "; busy
cpu_after="$(cpu_seconds "${SERVERS[0]}") $(cpu_seconds "${SERVERS[1]}") $(cpu_seconds "$REDIS_PID")"
grep -v '^$' "$WORK/delivery.log" || true
python3 - "$WORK/delivery.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_ms"] or {}
print(f"streams open: {r['open_streams']:,} of {r['streams']:,} (after {r['open_seconds']:.1f} s)")
print(f"sent: {r['changes_sent_per_second']:,.0f} changes/s; received: {r['messages_received_per_second']:,.0f} messages/s "
      f"carrying {r['states_received_per_second']:,.0f} user states/s; {r['deliveries_measured']:,} deliveries measured")
if l:
    print(f"delivery latency: p50 {l['p50']:,.0f} ms, p90 {l['p90']:,.0f} ms, p99 {l['p99']:,.0f} ms, max {l['max']:,.0f} ms "
          f"(mean {l['mean']:,.0f} ms); bar p99 <= {r['bar_ms']:,} ms: {'met' if r['bar_met'] else 'MISSED'}")
print(f"lost changes: {r['lost']} of {r['checked']:,} subscriptions checked" + (f" (e.g. {r['lost_sample']})" if r['lost_sample'] else ""))
for status, tally in sorted(r["ended"].items()):
    if status != "OK":
        print(f"  streams ended {status}: {tally['count']:,} (\"{tally['sample_message'][:120]}\")")
PY
python3 - "$cpu_before" "$cpu_after" "$load_cpu" "$started" "$finished" <<'PY'
import sys
before, after = ([float(x) for x in a.split()] for a in sys.argv[1:3])
load, wall = float(sys.argv[3]), float(sys.argv[5]) - float(sys.argv[4])
used = [a - b for a, b in zip(after, before)]
print(f"CPU over the {wall:.0f} s of the run (cores busy on average): instance a {used[0] / wall:.2f}, instance b {used[1] / wall:.2f}, "
      f"Redis {used[2] / wall:.2f}, load {load / wall:.2f}")
PY
# Redis' own time per call: the change scripts (EVALSHA) and what the instances subscribed to.
"${REDIS[@]}" info commandstats | tr -d '\r' | awk -F'[:,=]' \
  '/^cmdstat_(evalsha|publish|subscribe|hgetall|eval)[:]/ { printf "  redis %s: %s calls, %s us/call\n", substr($1, 9), $3, $7 }'
stop_all
fi
