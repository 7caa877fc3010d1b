"""AdminService over the wire with grpcio: the admin key, the instance/pool/queue/cache
snapshot, per-queue stats and flat metrics, against a Tally on the run's PostgreSQL and Redis."""
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, eventually


@pytest.fixture
def admin(stubs, channel):
    from tally.v1 import admin_pb2, admin_pb2_grpc
    return admin_pb2, admin_pb2_grpc.AdminServiceStub(channel)


def test_every_method_needs_the_admin_key(admin):
    pb, stub = admin
    for call, request in ((stub.Stats, pb.StatsRequest()), (stub.Metrics, pb.MetricsRequest()),
                          (stub.QueueStats, pb.QueueStatsRequest()), (stub.NotificationStats, pb.NotificationStatsRequest())):
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            call(request, metadata=(("x-admin-key", "wrong"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, "a wrong key is missing credentials, not a missing right"


def test_stats_reports_instance_pools_queues_and_caches(admin):
    pb, stub = admin
    first = stub.Stats(pb.StatsRequest(), metadata=ADMIN, timeout=10)
    second = stub.Stats(pb.StatsRequest(), metadata=ADMIN, timeout=10)
    instance = second.instance
    assert instance.instance_id and instance.uptime_seconds >= 0 and not instance.degraded
    assert instance.open_connections >= 1 and instance.open_streams >= 1  # this call's own
    assert instance.calls_succeeded >= first.instance.calls_succeeded + 1
    primary = {p.name: p for p in second.pools}["primary"]
    assert primary.max >= 1 and primary.total >= primary.idle + primary.in_use
    assert [q.name for q in second.queues] == ["events", "topups", "notifications"]
    assert [c.name for c in second.caches] == ["rank", "board_mirror", "api_keys", "presence"]


def test_rank_lookups_count_as_mirror_hits_or_cache_hits_or_misses(admin, boards):
    pb, stub = admin
    lb, board_stub = boards
    board = f"tournament:{uuid.uuid4().hex[:12]}"
    board_stub.Submit(lb.SubmitRequest(board_id=board, user_id="ann", score=5), metadata=ADMIN, timeout=10)

    def lookups():
        # A Rank is answered by the board's mirror, else by the short-TTL cache, else by Redis.
        caches = {c.name: c for c in stub.Stats(pb.StatsRequest(), metadata=ADMIN, timeout=10).caches}
        return caches["board_mirror"].hits + caches["rank"].hits + caches["rank"].misses, caches["rank"].hits
    before, _ = lookups()
    for _ in range(2):
        board_stub.Rank(lb.RankRequest(board_id=board, user_id="ann"), timeout=10)
    after, hits = lookups()
    assert after - before == 2  # each lookup is exactly one of those


def test_queue_stats_one_all_and_unknown(admin, events):
    pb, stub = admin
    ev, event_stub = events
    assert [q.name for q in stub.QueueStats(pb.QueueStatsRequest(), metadata=ADMIN, timeout=10).queues] == ["events", "topups", "notifications"]
    before = stub.QueueStats(pb.QueueStatsRequest(queue="events"), metadata=ADMIN, timeout=10).queues[0].completed
    event = ev.Event(id=f"adm-{uuid.uuid4().hex}", type="app_launched", user_id="u", client_time_ms=int(time.time() * 1000))
    assert list(event_stub.Track(ev.TrackRequest(events=[event]), timeout=10).accepted_ids) == [event.id]
    done = eventually(lambda: stub.QueueStats(pb.QueueStatsRequest(queue="events"), metadata=ADMIN,
                                              timeout=10).queues[0].completed > before)
    assert done, "the queue never counted the tracked event's job as completed"
    with pytest.raises(grpc.RpcError) as info:
        stub.QueueStats(pb.QueueStatsRequest(queue="nope"), metadata=ADMIN, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == 'unknown queue "nope" (queues: events, topups, notifications)'


def test_metrics_flatten_the_snapshot_and_filter_by_prefix(admin):
    pb, stub = admin
    everything = stub.Metrics(pb.MetricsRequest(), metadata=ADMIN, timeout=10).metrics
    calls = {m.labels["outcome"]: m.value for m in everything if m.name == "tally_calls_total"}
    assert set(calls) == {"ok", "failed"} and calls["ok"] >= 1
    assert any(m.name == "tally_queue_jobs" and m.labels == {"queue": "events", "state": "waiting"} for m in everything)
    pools = stub.Metrics(pb.MetricsRequest(prefix="tally_db_pool_"), metadata=ADMIN, timeout=10).metrics
    assert pools and all(m.name.startswith("tally_db_pool_") for m in pools)
    assert {m.labels["pool"] for m in pools} == {"primary"}
    assert not stub.Metrics(pb.MetricsRequest(prefix="no_such_metric"), metadata=ADMIN, timeout=10).metrics


def test_tally_stats_prints_the_instance_as_json_and_as_tables(admin, tally):
    """`tally stats` reads AdminService.Stats of a running instance: the same numbers as the
    RPC, as JSON for programs and as tables for people; a wrong key fails with one line."""
    import json
    import os
    import subprocess
    from conftest import ADMIN_KEY, ROOT
    pb, stub = admin
    binary = os.environ.get("TALLY_BIN", str(ROOT / ".build" / "debug" / "tally"))
    host, port = tally.rsplit(":", 1)

    def stats(*flags, key=ADMIN_KEY):
        return subprocess.run([binary, "stats", "--host", host, "--port", port, "--admin-key", key, *flags],
                              capture_output=True, text=True, timeout=30)

    expected = stub.Stats(pb.StatsRequest(), metadata=ADMIN, timeout=10)
    done = stats("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["instance"]["instanceId"] == expected.instance.instance_id
    assert report["instance"]["callsSucceeded"] >= expected.instance.calls_succeeded + 1, "the RPC just made is counted"
    assert [p["name"] for p in report["pools"]] == [p.name for p in expected.pools]
    assert [q["name"] for q in report["queues"]] == [q.name for q in expected.queues] == ["events", "topups", "notifications"]
    assert {c["name"] for c in report["caches"]} == {"rank", "board_mirror", "api_keys", "presence"}
    # The calls per method are the metrics' numbers: Stats was called at least twice (above).
    calls = {c["method"]: c for c in report["calls"]}
    assert calls["tally.v1.AdminService/Stats"]["calls"] > calls["tally.v1.AdminService/Stats"]["errors"]
    assert 0 < calls["tally.v1.AdminService/Stats"]["p50Ms"] <= calls["tally.v1.AdminService/Stats"]["p99Ms"]
    topups = stub.TopupStats(pb.TopupStatsRequest(), metadata=ADMIN, timeout=10)
    assert report["topups"]["limitMode"] == "redis"
    assert report["topups"]["total"]["todayCount"] >= topups.total.today_count
    notifications = stub.NotificationStats(pb.NotificationStatsRequest(), metadata=ADMIN, timeout=10)
    assert report["notifications"]["sink"] == notifications.sink == "log"
    assert report["notifications"]["rateGlobal"] == notifications.rate_global == 30
    assert report["notifications"]["delivered"] >= 0 and report["notifications"]["pausedDestinations"] >= 0
    metrics = stub.Metrics(pb.MetricsRequest(prefix="tally_notification"), metadata=ADMIN, timeout=10).metrics
    assert {m.labels["status"] for m in metrics if m.name == "tally_notifications"} == {"pending", "delivered", "dead"}
    assert any(m.name == "tally_notification_paused_destinations" for m in metrics)

    table = stats()
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"instance {expected.instance.instance_id} ")
    assert any(line.split()[:3] == ["pool", "total", "idle"] for line in lines)
    assert any(line.split()[:1] == ["tally.v1.AdminService/Stats"] for line in lines)
    assert any(line.split()[0] == "events" for line in lines if line.strip())
    assert any(line.split()[:3] == ["customer", "pending", "processing"] for line in lines)
    assert any(line.startswith("provider: ") and line.endswith("limit decided by redis") for line in lines)
    assert any(line.split()[:3] == ["waiting", "delayed", "in"] for line in lines)
    assert any(line.startswith("notification limits: 1/s per destination, 30/s in all; sink log") for line in lines)

    refused = stats(key="wrong")
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.strip() == "Error: stats failed: UNAUTHENTICATED: the admin key is not valid"
