"""EventService.Counts over the wire, and the rollups' proof: after a run with resends and a
Tally SIGKILL, the hourly counts equal count(*) GROUP BY over the events table and each day's
active users are within 1% of the exact count(DISTINCT user_id)."""
import random
import subprocess
import threading
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, eventually, start_tally, stop_tally
from test_durability import DURABLE_ENV, private_services, wait_for

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def psql(url, sql):
    """Rows of `sql` on the database at `url`, as lists of text fields."""
    out = subprocess.run(["psql", url, "-X", "-A", "-t", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def test_counts_needs_the_admin_key(events):
    pb, stub = events
    request = pb.CountsRequest(from_ms=0, to_ms=DAY_MS, granularity=pb.COUNTS_GRANULARITY_DAY)
    for metadata in ((), (("x-admin-key", "wrong"),)):
        with pytest.raises(grpc.RpcError) as info:
            stub.Counts(request, metadata=metadata, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("fields, message", [
    (dict(granularity=0), "granularity: required, one of HOUR, DAY or MONTH"),
    (dict(from_ms=-5), "from_ms: must not be negative, got -5"),
    (dict(to_ms=1_000), "to_ms: must be after from_ms (1798761600000), got 1000"),
    (dict(to_ms=1_798_761_600_000 + 10_001 * HOUR_MS),
     "to_ms: the range spans 10001 hours, at most 10000 buckets allowed (EVENT_COUNTS_MAX_BUCKETS)"),
    (dict(types=["game_ended", ""]), "types[1]: must not be empty"),
    (dict(active_users=True), "active_users: counted per DAY or MONTH, not per HOUR"),
    (dict(exact_active_users=True), "exact_active_users: needs active_users and granularity DAY"),
])
def test_counts_refuses_bad_requests_naming_the_field(events, fields, message):
    pb, stub = events
    request = dict(from_ms=1_798_761_600_000, to_ms=1_798_761_600_000 + DAY_MS, granularity=pb.COUNTS_GRANULARITY_HOUR)
    request.update(fields)
    with pytest.raises(grpc.RpcError) as info:
        stub.Counts(pb.CountsRequest(**request), metadata=ADMIN, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message


def test_counts_per_hour_and_day_with_active_users(events):
    pb, stub = events
    kind = f"custom.counts-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    hour = now // HOUR_MS * HOUR_MS
    sent = [pb.Event(id=f"{kind}-{i}", type=kind, user_id=f"{kind}-user-{i % 3}", client_time_ms=now) for i in range(7)]
    sent.append(pb.Event(id=f"{kind}-late", type=kind, user_id=f"{kind}-user-0", client_time_ms=now - HOUR_MS))
    assert len(stub.Track(pb.TrackRequest(events=sent), timeout=10).accepted_ids) == 8
    stub.Track(pb.TrackRequest(events=sent[:3]), timeout=10)  # a resend counts nothing
    hourly = pb.CountsRequest(from_ms=hour - HOUR_MS, to_ms=hour + HOUR_MS, granularity=pb.COUNTS_GRANULARITY_HOUR, types=[kind])

    def counted():
        reply = stub.Counts(hourly, metadata=ADMIN, timeout=10)
        return [[(c.type, c.count) for c in b.counts] for b in reply.buckets] == [[(kind, 1)], [(kind, 7)]] and reply
    reply = eventually(counted)
    assert reply, stub.Counts(hourly, metadata=ADMIN, timeout=10)
    assert [b.start_ms for b in reply.buckets] == [hour - HOUR_MS, hour]

    day = now // DAY_MS * DAY_MS
    daily = stub.Counts(pb.CountsRequest(from_ms=now, to_ms=now + 1, granularity=pb.COUNTS_GRANULARITY_DAY, types=[kind],
                                         active_users=True), metadata=ADMIN, timeout=10)
    assert [b.start_ms for b in daily.buckets] == [day]
    if (now - HOUR_MS) // DAY_MS == now // DAY_MS:  # both hours on one day (not just after midnight)
        assert [(c.type, c.count) for c in daily.buckets[0].counts] == [(kind, 8)]
    assert daily.buckets[0].active_users >= 3, "the day's users include these three"


def test_rollups_equal_the_events_after_resends_and_a_sigkill(stubs):
    """The proof: own PostgreSQL and Redis, so every event and key in them is this run's."""
    with private_services("all") as (urls, _control):
        rollups_after_a_crash(urls)


def rollups_after_a_crash(urls):
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    env = dict(DURABLE_ENV, **urls)
    rng = random.Random(20)
    now = int(time.time() * 1000)
    users = [f"player-{index}" for index in range(3000)]
    types = ["app_launched", "game_started", "game_ended", "level_completed", "custom.shop_opened"]
    # Client times now, an hour ago, 23 hours ago (counted then), two days ago and 0 (counted
    # when received).
    offsets = [0, -HOUR_MS, -23 * HOUR_MS, -48 * HOUR_MS]
    batches = []
    for number in range(160):
        batch = []
        for index in range(100):
            n = number * 100 + index
            client = 0 if n % 13 == 0 else now + offsets[n % len(offsets)]
            batch.append(pb.Event(id=f"proof-{n}", type=types[n % len(types)], user_id=rng.choice(users),
                                  client_time_ms=client, score=n % 1000))
        batches.append(pb.TrackRequest(events=batch))

    acked, lock = set(), threading.Lock()

    def send(stub, requests):
        for request in requests:
            try:
                reply = stub.Track(request, timeout=10)
            except grpc.RpcError:
                return  # the server died
            with lock:
                acked.update(reply.accepted_ids)
                acked.update(reply.duplicate_ids)  # a resend of a batch whose answer the crash lost

    proc, port, log = start_tally(env=env)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = events_pb2_grpc.EventServiceStub(channel)
    # Each batch once, and every fifth sent again (a client resend), on two connections.
    first_half = batches[:100] + batches[:100:5]
    sender = threading.Thread(target=send, args=(stub, first_half), daemon=True)
    sender.start()
    assert wait_for(lambda: len(acked) >= 4000, timeout=60), open(log).read()[-3000:]
    proc.kill()  # SIGKILL, mid-run
    proc.wait()
    sender.join(timeout=30)
    channel.close()

    proc, port, log = start_tally(env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            # Everything again (what the client never heard back about, and resends), then the rest.
            send(stub, batches)
            send(stub, batches[::7])
            assert len(acked) == 16_000
            database = urls["DATABASE_URL"]

            def stored():
                return int(psql(database, "SELECT count(*) FROM events")[0][0])
            assert wait_for(lambda: stored() == 16_000, timeout=120), f"{stored()} stored"
            exact = {(int(h), t): int(n) for h, t, n in psql(database, """
                SELECT floor(extract(epoch FROM event_rollup_time(client_time, received_at)) / 3600)::bigint, type, count(*)
                FROM events GROUP BY 1, 2""")}
            assert sum(exact.values()) == 16_000 and len(exact) > len(types)

            start = (now - 3 * DAY_MS) // DAY_MS * DAY_MS
            end = (now + 2 * DAY_MS) // DAY_MS * DAY_MS
            hourly = stub.Counts(pb.CountsRequest(from_ms=start, to_ms=end, granularity=pb.COUNTS_GRANULARITY_HOUR),
                                 metadata=ADMIN, timeout=10)
            counted = {(b.start_ms // HOUR_MS, c.type): c.count for b in hourly.buckets for c in b.counts}
            assert counted == exact

            daily = stub.Counts(pb.CountsRequest(from_ms=start, to_ms=end, granularity=pb.COUNTS_GRANULARITY_DAY,
                                                 active_users=True), metadata=ADMIN, timeout=10)
            days = 0
            for bucket in daily.buckets:
                date = time.strftime("%Y-%m-%d", time.gmtime(bucket.start_ms / 1000))
                truth = int(psql(database, f"SELECT event_active_users('{date}')")[0][0])
                print(f"{date}: {sum(c.count for c in bucket.counts)} events, active users {bucket.active_users} "
                      f"(HyperLogLog), {truth} (exact)")
                assert abs(bucket.active_users - truth) <= truth * 0.01, (date, bucket.active_users, truth)
                days += truth > 0
            assert days >= 2, "client times spread the events over more than one day"
    finally:
        assert stop_tally(proc) == 0, open(log).read()[-3000:]
