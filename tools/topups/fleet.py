"""Top-ups across a fleet, faults included, counted end to end.

    .venv/bin/python3 tools/topups/fleet.py [--topups 100000] [--instances 3] [--binary .build/release/tally]

Starts its own PostgreSQL and Redis (tools/services.sh, private state folder), the provider
simulator (tools/topups/provider_sim.py, counts every charge) and N Tally instances, then:
1. limit: 250 Topup calls of one customer spread over the instances within a minute: exactly
   the customer's 200 are accepted, the rest RESOURCE_EXHAUSTED;
2. load: --topups top-ups of another customer, each key sent 1 to 3 times (some of the resends
   concurrently, on another instance), clients retrying as real ones do (same key, any
   instance) through the faults: one instance SIGKILLed mid-run and restarted, the simulator
   restarted once;
3. waits until every top-up is final and checks: one top-up per key, every accepted one final,
   each SUCCEEDED top-up charged exactly once, FAILED ones never, Postgres' sums equal to the
   simulator's.
Prints one line per check and exits non-zero when one fails.
"""
import argparse
import concurrent.futures
import json
import pathlib
import random
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "topups"))
sys.path.insert(0, str(ROOT / "tools" / "chaos"))
import provider_sim  # noqa: E402
from harness import Instance, Services, stubs  # noqa: E402

ADMIN = (("x-admin-key", "fleet-admin"),)


class Fleet:
    def __init__(self, instances):
        import grpc
        from tally.v1 import topup_pb2_grpc, admin_pb2_grpc
        self.instances = instances
        self.channels = [grpc.insecure_channel(f"127.0.0.1:{i.port}") for i in instances]
        self.topup = [topup_pb2_grpc.TopupServiceStub(c) for c in self.channels]
        self.admin = [admin_pb2_grpc.AdminServiceStub(c) for c in self.channels]

    def key(self, customer, rate):
        from tally.v1 import admin_pb2
        return self.admin[0].CreateApiKey(admin_pb2.CreateApiKeyRequest(customer_id=customer, rate_per_min=rate),
                                          metadata=ADMIN, timeout=10).secret


def limit_check(fleet, rate=200, calls=250):
    import grpc
    from tally.v1 import topup_pb2, common_pb2
    secret = fleet.key("fleet-limit", rate)

    def send(n):
        request = topup_pb2.TopupRequest(idempotency_key=f"limit-{n}", phone_number=f"+49151{n:08d}",
                                         amount=common_pb2.Money(minor_units=1000, currency="EUR"))
        try:
            fleet.topup[n % len(fleet.topup)].Topup(request, metadata=(("x-api-key", secret),), timeout=10)
            return "ok"
        except grpc.RpcError as error:
            return error.code().name

    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        outcomes = list(pool.map(send, range(calls)))
    accepted = outcomes.count("ok")
    return accepted == rate, f"limit: {calls} calls over {len(fleet.topup)} instances, {accepted} accepted " \
                             f"(want {rate}), {outcomes.count('RESOURCE_EXHAUSTED')} RESOURCE_EXHAUSTED"


def load(fleet, count, workers, faults):
    """Sends `count` top-ups, each key 1-3 times; returns {key: topup id} as acknowledged."""
    import grpc
    from tally.v1 import topup_pb2, common_pb2
    secret = fleet.key("fleet-load", 1_000_000)
    rng = random.Random(7)
    plans = []
    for n in range(count):
        sends = rng.choices([1, 2, 3], weights=[70, 20, 10])[0]
        declined = n % 50 == 0  # numbers ending 0000 are declined by the provider
        # Ending in 1: never one of the simulator's special numbers (0000, 0500, 0503).
        phone = f"+4915{n:07d}0000" if declined else f"+4916{n:07d}1"
        minor = 100 + n % 4900
        plans.append((f"load-{n}", phone, minor, sends, rng.random() < 0.5))
    acknowledged, mismatched, lock = {}, [], threading.Lock()
    done = [0]

    def send_until_accepted(key, phone, minor, start):
        request = topup_pb2.TopupRequest(idempotency_key=key, phone_number=phone,
                                         amount=common_pb2.Money(minor_units=minor, currency="EUR"))
        target = start
        for _ in range(200):
            try:
                response = fleet.topup[target % len(fleet.topup)].Topup(request, metadata=(("x-api-key", secret),), timeout=5)
                return response.topup.id
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED,
                                        grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                    raise
                target += 1  # as a client behind a load balancer would: another instance
                time.sleep(0.05)
        raise RuntimeError(f"{key} never accepted")

    def run(plan):
        key, phone, minor, sends, concurrent_resend = plan
        start = hash(key)
        if sends > 1 and concurrent_resend:
            with concurrent.futures.ThreadPoolExecutor(max_workers=sends) as pool:
                ids = list(pool.map(lambda k: send_until_accepted(key, phone, minor, start + k), range(sends)))
        else:
            ids = [send_until_accepted(key, phone, minor, start + k) for k in range(sends)]
        with lock:
            if len(set(ids)) != 1:
                mismatched.append(key)
            acknowledged[key] = (ids[0], phone, minor)
            done[0] += 1
        faults(done[0])

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, plans))
    return acknowledged, mismatched


def run_fleet(services, binary, topups, instance_count=3, workers=48):
    """The limit check, the load through the faults, and the audit: [(ok, line)]."""
    simulator = provider_sim.ProviderSimulator().start()
    sim_port = simulator.port
    current = {"simulator": simulator}  # the restarted one after the provider fault
    instances = []
    results = []
    try:
        env = dict(services.tally_env("fleet-admin"), TALLY_INSTANCE_COUNT=str(instance_count), TOPUP_PROVIDER="http",
                   TOPUP_PROVIDER_URL=simulator.url, TOPUP_PROVIDER_TIMEOUT_MS="1000", TOPUP_RETRY_BASE_MS="100",
                   TOPUP_RETRY_MAX_MS="1000", TOPUP_MAX_ATTEMPTS="10", QUEUE_LEASE_MS="5000", TOPUP_SWEEP_AFTER_MS="3000")
        services.migrate(binary)
        instances = [Instance(binary, env, i) for i in range(instance_count)]
        fleet = Fleet(instances)
        results.append(limit_check(fleet))

        fired = set()

        def faults(done):
            if done >= topups * 0.3 and "kill" not in fired:
                fired.add("kill")
                victim = instances[1]
                victim.kill()
                threading.Timer(1.0, victim.start).start()
            if done >= topups * 0.6 and "provider" not in fired:
                fired.add("provider")
                simulator.stop()
                time.sleep(0.5)
                # The same port and counts: to the instances, the provider was down for 0.5 s.
                current["simulator"] = provider_sim.ProviderSimulator(sim_port, ledger=simulator.ledger).start()

        started = time.monotonic()
        acknowledged, mismatched = load(fleet, topups, workers, faults)
        elapsed = time.monotonic() - started
        results.append((not mismatched, f"load: {len(acknowledged)} keys acknowledged in {elapsed:.1f} s "
                                        f"({len(acknowledged) / elapsed:.0f}/s with resends), {len(mismatched)} keys answered with two top-ups; "
                                        f"faults fired: {sorted(fired)}"))

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            open_count = int(services.psql("SELECT count(*) FROM topups WHERE customer_id = 'fleet-load' AND state IN ('PENDING', 'PROCESSING')"))
            if open_count == 0:
                break
            time.sleep(1)
        rows = services.psql("SELECT id, idempotency_key, state, amount_minor_units, phone_number, replace(failure_reason, '|', '/') "
                             "FROM topups WHERE customer_id = 'fleet-load'")
        stored = {line.split("|")[1]: line.split("|") for line in rows.splitlines() if line}
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/stats", timeout=10).read())
        charges = stats["charges"]
        lost = [k for k in acknowledged if k not in stored]
        phantom = [k for k in stored if k not in acknowledged]
        wrong_id = [k for k, (topup_id, _, _) in acknowledged.items() if k in stored and stored[k][0] != topup_id]
        unfinished = [k for k, row in stored.items() if row[2] not in ("SUCCEEDED", "FAILED")]
        succeeded = [row for row in stored.values() if row[2] == "SUCCEEDED"]
        failed = [row for row in stored.values() if row[2] == "FAILED"]
        # Only numbers the provider declines may fail: any other failure is a charge lost.
        unexpected = [row for row in failed if not row[4].endswith("0000")]
        twice = [row[0] for row in succeeded if charges.get(row[0], 0) != 1]
        failed_charged = [row[0] for row in failed if charges.get(row[0], 0) != 0]
        pg_sum = sum(int(row[3]) for row in succeeded)
        sim_sum = sum(int(row[3]) * charges.get(row[0], 0) for row in stored.values())
        results.append((not lost and not phantom and not wrong_id,
                        f"stored: {len(stored)} top-ups, lost {len(lost)}, phantom {len(phantom)}, other id {len(wrong_id)}"))
        results.append((not unfinished and not unexpected,
                        f"final: {len(succeeded)} SUCCEEDED, {len(failed)} FAILED ({len(unexpected)} not declined by the provider"
                        f"{': ' + unexpected[0][5] if unexpected else ''}), {len(unfinished)} unfinished"))
        results.append((not twice and not failed_charged,
                        f"charges: {sum(charges.get(row[0], 0) for row in stored.values())} for {len(succeeded)} succeeded; "
                        f"succeeded not charged exactly once {len(twice)}, failed but charged {len(failed_charged)}"))
        results.append((pg_sum == sim_sum, f"amounts: Postgres {pg_sum} EUR minor units succeeded, simulator charged {sim_sum}"))
    finally:
        for instance in instances:
            instance.stop()
        current["simulator"].stop()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topups", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--workers", type=int, default=48, help="client threads")
    parser.add_argument("--binary", default=str(ROOT / ".build" / "release" / "tally"))
    args = parser.parse_args()
    stubs("tally/v1/common.proto", "tally/v1/topup.proto", "tally/v1/admin.proto")
    services = Services(prefix="tally-fleet-")
    try:
        results = run_fleet(services, args.binary, args.topups, args.instances, args.workers)
    finally:
        services.stop()
    for ok, line in results:
        print(("PASS  " if ok else "FAIL  ") + line)
    passed = sum(ok for ok, _ in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
