"""The events scenarios: one fault each, injected while clients stream events, then counted.

Scenarios share the run's PostgreSQL and Redis but start their own Tally instances and use
their own event ids and users (a run id), so their counts are their own. The load runs `before_s` seconds (and at least until some events are
acknowledged), the fault fires, the load goes on `after_s` seconds, the clients finish their
pending batches (resending through the fault), and the audit counts."""
import time
import uuid

from audit import audit_events
from event_load import EventLoad
from harness import Instance, wait_for


class Run:
    """What a fault can touch: the services, the instances, the load."""

    def __init__(self, services, instances, load):
        self.services, self.instances, self.load = services, instances, load
        self.notes = []


def run_events_scenario(services, binary, fault, instances=2, env=None, before_s=4.0, after_s=3.0, check=None):
    """Returns (ok, line) for one scenario; `check(run)` may add a condition of its own."""
    import grpc
    from tally.v1 import admin_pb2_grpc, leaderboard_pb2_grpc
    fleet, load = [], None
    try:
        full_env = dict(services.tally_env(), EVENT_USER_RATE_PER_MIN="0", EVENT_PEER_RATE_PER_MIN="0", QUEUE_LEASE_MS="1500",
                        LEADERBOARD_REPAIR_AFTER_MS="1000", TALLY_INSTANCE_COUNT=str(instances), **(env or {}))
        fleet = [Instance(binary, full_env, n) for n in range(instances)]
        run_id = f"ch{uuid.uuid4().hex[:8]}"
        load = EventLoad([i.address for i in fleet], run_id).start()
        started = time.monotonic()
        wait_for(lambda: load.acknowledged_count() >= 200 and time.monotonic() - started >= before_s, 60)
        run = Run(services, fleet, load)
        fault(run)
        time.sleep(after_s)
        load.stop()
        for instance in fleet:  # a fault may have left one stopped or paused
            instance.resume()
            if instance.proc.poll() is not None:
                instance.start()
        channel = grpc.insecure_channel(fleet[-1].address)
        audit_started = time.monotonic()
        counts = audit_events(services, load, admin_pb2_grpc.AdminServiceStub(channel),
                              leaderboard_pb2_grpc.LeaderboardServiceStub(channel), run_id)
        channel.close()
        run.notes.append(f"load {audit_started - started:.0f} s, drain and audit {time.monotonic() - audit_started:.0f} s")
        ok = counts.ok and not load.fatal and not load.rejected and not load.abandoned
        extra = check(run) if check else None
        if extra is not None:
            ok = ok and extra[0]
            run.notes.append(extra[1])
        failures = ", ".join(f"{k} {v}" for k, v in sorted(load.statuses.items())) or "none"
        line = (f"{counts.line()}; failed attempts: {failures}; abandoned {load.abandoned}"
                + (f"; fatal: {load.fatal[0]}" if load.fatal else "") + (f"; rejected: {load.rejected[0]}" if load.rejected else "")
                + "".join(f"; {note}" for note in run.notes))
        return ok, line
    finally:
        if load is not None:
            load.stopping.set()
        for instance in fleet:
            instance.stop()
        services.heal()


# The faults.

def tally_killed(run):
    victim = run.instances[0]
    victim.kill()
    time.sleep(1.0)
    victim.start()
    run.notes.append("instance 0 SIGKILLed and restarted after 1 s")


def redis_killed(run):
    run.services.control("kill", "redis")
    time.sleep(0.5)
    run.services.control("start", "redis")
    run.notes.append("Redis SIGKILLed, restarted from its AOF after 0.5 s")


def redis_stopped(run):
    """Longer than a client's deadline (2 s): the instances write straight to Postgres meanwhile."""
    run.services.control("stop", "redis")
    before = run.load.acknowledged_count()
    time.sleep(4.0)
    during = run.load.acknowledged_count() - before
    run.services.control("start", "redis")
    run.notes.append(f"Redis stopped 4 s: {during} events acknowledged meanwhile through the Postgres fallback")
    run.fallback_acks = during


def postgres_restarted(run):
    run.services.control("restart", "postgres")
    run.notes.append("Postgres fast shutdown and restart")


def both_restarted(run):
    run.services.control("restart", "postgres")
    time.sleep(1.0)
    run.services.control("kill", "redis")
    time.sleep(0.5)
    run.services.control("start", "redis")
    run.notes.append("Postgres restarted, then Redis SIGKILLed and restarted")


def worker_paused(run):
    """SIGSTOP one instance while its workers hold jobs, past their 1.5 s lease: the other
    instance claims them again; the paused one then finishes its writes."""
    victim = run.instances[0]
    victim.pause()
    time.sleep(4.0)
    victim.resume()
    run.notes.append("instance 0 paused 4 s (lease 1.5 s), then resumed")


def redis_refusing_writes(run):
    """A Redis that answers -OOM to every write (maxmemory below its usage, noeviction)."""
    run.services.redis("CONFIG", "SET", "maxmemory", "1")
    time.sleep(3.0)
    run.services.redis("CONFIG", "SET", "maxmemory", "0")
    run.notes.append("Redis answered -OOM to writes for 3 s")


def fallback_was_used(run):
    acks = getattr(run, "fallback_acks", 0)
    return acks > 0, f"fallback {'used' if acks > 0 else 'NOT used'}"


SCENARIOS = {
    "tally-killed": (tally_killed, {}),
    "redis-killed": (redis_killed, {}),
    "redis-stopped": (redis_stopped, {"check": fallback_was_used}),
    "postgres-restarted": (postgres_restarted, {}),
    "both-restarted": (both_restarted, {}),
    "worker-paused": (worker_paused, {}),
    "redis-refusing-writes": (redis_refusing_writes, {}),
}
