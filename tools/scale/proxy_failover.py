"""Tally instances behind HAProxy and behind grpcio's own round robin: one instance SIGKILLed
mid-load, clients retry with the same event ids, nothing acknowledged is lost.

Run by tools/scale/haproxy.sh, which starts the instances and the proxy and passes their
addresses. Prints counts; exits 1 when a client saw a status that is not retryable, when an
acknowledged event is missing from Postgres or stored twice, or when the round robin left an
instance out.
"""
import argparse
import collections
import csv
import io
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import grpc

ROOT = pathlib.Path(__file__).resolve().parents[2]
# What a client may retry with the same event ids: the server or the path to it failed
# (UNAVAILABLE: HAProxy answers 502/503 when the instance died under the call), or the answer
# did not come in time; the event ids make the retry harmless.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
BATCH = 20


def stubs():
    """tally.v1's Python modules, generated from proto/ into a temporary folder."""
    from grpc_tools import protoc
    import grpc_tools
    out = tempfile.mkdtemp(prefix="tally-stubs-")
    proto = ROOT / "proto"
    files = [str(p.relative_to(proto)) for p in (proto / "tally" / "v1").glob("*.proto")]
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]) == 0
    sys.path.insert(0, out)


def calls_succeeded(address, admin_key):
    """The instance's own count of calls answered OK (AdminService.Stats)."""
    from tally.v1 import admin_pb2, admin_pb2_grpc
    with grpc.insecure_channel(address) as channel:
        stats = admin_pb2_grpc.AdminServiceStub(channel).Stats(admin_pb2.StatsRequest(), metadata=(("x-admin-key", admin_key),), timeout=5)
        return stats.instance.calls_succeeded


def batch(pb, run, client, sequence):
    now = int(time.time() * 1000)
    return pb.TrackRequest(events=[
        pb.Event(id=f"{run}-{client}-{sequence}-{i}", type="level_completed", user_id=f"{run}-u{client}", client_time_ms=now, level=i)
        for i in range(BATCH)])


def client_round_robin(args, run):
    """grpcio's round_robin over the instances' addresses: no proxy, calls spread by the client."""
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    before = [calls_succeeded(address, args.admin_key) for address in args.instances]
    target = "ipv4:" + ",".join(args.instances)
    with grpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")]) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = events_pb2_grpc.EventServiceStub(channel)
        for sequence in range(args.round_robin_calls):
            stub.Track(batch(pb, run, "rr", sequence), timeout=10)
    # Each instance also answered the one Stats call of `before`.
    spread = [calls_succeeded(address, args.admin_key) - b - 1 for address, b in zip(args.instances, before)]
    print(f"client-side round robin ({target}, grpc.lb_policy_name=round_robin): "
          f"{args.round_robin_calls} calls, per instance {spread}")
    return min(spread) >= args.round_robin_calls // (2 * len(args.instances))


class Client(threading.Thread):
    """Tracks batches through the proxy; a failed batch is sent again with the same ids."""

    def __init__(self, proxy, pb, stub_type, run, number, stop):
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(proxy, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = stub_type(self.channel)
        self.pb, self.run_id, self.number, self.stop = pb, run, number, stop
        self.acked, self.calls, self.retries = set(), 0, 0
        self.statuses = collections.Counter()
        self.details = {}
        self.duplicates = 0

    def run(self):
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            request = batch(self.pb, self.run_id, self.number, sequence)
            for attempt in range(1, 100):
                self.calls += 1
                try:
                    reply = self.stub.Track(request, timeout=10)
                except grpc.RpcError as error:
                    self.statuses[error.code()] += 1
                    self.details.setdefault(error.code(), error.details())
                    if error.code() not in RETRYABLE:
                        break
                    self.retries += 1
                    time.sleep(min(1.0, 0.05 * attempt))
                    continue
                self.statuses[grpc.StatusCode.OK] += 1
                self.acked.update(reply.accepted_ids)
                self.acked.update(reply.duplicate_ids)
                self.duplicates += len(reply.duplicate_ids)
                break
        self.channel.close()


def haproxy_servers(url):
    """Per server: its state and the requests HAProxy sent it (the stats page's CSV)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode().lstrip("# ")
    return {row["svname"]: (row["status"], int(row["stot"] or 0)) for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "tally" and row["svname"] not in ("BACKEND", "FRONTEND")}


def stored(args, run):
    """(event ids stored for this run, rows beyond one per id) from Postgres."""
    query = f"SELECT event_id FROM events WHERE user_id ~ '^{run}-u[0-9]+$'"
    out = subprocess.run([args.psql, args.database_url, "-tAq", "-c", query], check=True, capture_output=True, text=True).stdout
    ids = out.split()
    return set(ids), len(ids) - len(set(ids))


def through_haproxy(args, run):
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    stop = threading.Event()
    clients = [Client(args.proxy, pb, events_pb2_grpc.EventServiceStub, run, n, stop) for n in range(args.clients)]
    for client in clients:
        client.start()
    time.sleep(args.kill_after)
    victim = args.pids[args.kill]
    acked_before = sum(len(c.acked) for c in clients)
    os.kill(victim, signal.SIGKILL)
    print(f"SIGKILL instance {args.kill + 1} (pid {victim}) after {args.kill_after:.0f} s, {acked_before} events acknowledged")
    time.sleep(args.seconds - args.kill_after)
    stop.set()
    for client in clients:
        client.join(timeout=30)
    servers = haproxy_servers(args.stats)
    acked = set().union(*(c.acked for c in clients))
    statuses = sum((c.statuses for c in clients), collections.Counter())
    print(f"through HAProxy ({args.clients} clients, {args.seconds:.0f} s, {BATCH} events per Track): "
          f"{sum(c.calls for c in clients)} calls, {len(acked)} events acknowledged, "
          f"{sum(c.retries for c in clients)} retried batches, {sum(c.duplicates for c in clients)} events answered as duplicates on a retry")
    print("  statuses seen by clients: " + ", ".join(f"{code.name} {count}" for code, count in statuses.most_common()))
    details = {code: text for c in clients for code, text in c.details.items()}
    for code, text in details.items():
        print(f"    e.g. {code.name}: {text}")
    print("  HAProxy per server (state, requests): " + ", ".join(f"{name} {state} {count}" for name, (state, count) in sorted(servers.items())))
    not_retryable = {code: count for code, count in statuses.items() if code != grpc.StatusCode.OK and code not in RETRYABLE}

    deadline = time.monotonic() + 90
    while True:
        ids, extra = stored(args, run)
        if acked <= ids or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = acked - ids
    print(f"  in Postgres: {len(ids)} events stored, {len(missing)} acknowledged events missing, {extra} stored twice "
          f"({len(ids - acked)} stored without an acknowledgement: the answer was lost, the retry found them duplicates or is still in flight)")
    acked_after = len(acked) - acked_before
    ok = not not_retryable and not missing and extra == 0 and acked_before > 0 and acked_after > 0
    if acked_before == 0 or acked_after == 0:
        print(f"FAIL: acknowledged before the kill {acked_before}, after it {acked_after}: the proxy must serve on both sides of it")
    if not_retryable:
        print(f"FAIL: statuses that are not retryable: {not_retryable}")
    if missing:
        print(f"FAIL: acknowledged but not stored, e.g. {sorted(missing)[:5]}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--stats", required=True, help="HAProxy's stats page as CSV")
    parser.add_argument("--instances", required=True, type=lambda s: s.split(","))
    parser.add_argument("--pids", required=True, type=lambda s: [int(p) for p in s.split(",")])
    parser.add_argument("--psql", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--admin-key", default=os.environ.get("ADMIN_KEY", ""))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--kill-after", type=float, default=4.0)
    parser.add_argument("--kill", type=int, default=1, help="which instance to kill, 0-based")
    parser.add_argument("--round-robin-calls", type=int, default=300)
    args = parser.parse_args()
    stubs()
    run = f"scale-{uuid.uuid4().hex[:8]}"
    spread_ok = client_round_robin(args, run)
    if not spread_ok:
        print("FAIL: the client-side round robin left an instance (nearly) out")
    ok = through_haproxy(args, run)
    sys.exit(0 if ok and spread_ok else 1)


if __name__ == "__main__":
    main()
