"""Acknowledged events survive crashes: Tally killed with SIGKILL mid-stream, Redis stopped
mid-stream; and two instances share leaderboards (Watch and Rank on one see a Submit on the other)."""
import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, PRODUCT_ENV, ROOT, start_tally, stop_tally, wait_for

# Short leases so jobs held by a killed instance come back within the test.
DURABLE_ENV = dict(PRODUCT_ENV, QUEUE_LEASE_MS="1500", EVENT_PEER_RATE_PER_MIN="0")


def make_batch(pb, sequence, user, size=10):
    now = int(time.time() * 1000)
    return pb.EventBatch(sequence=sequence, events=[
        pb.Event(id=f"{user}-{sequence}-{i}", type="game_ended" if i == 0 else "level_completed", user_id=user,
                 client_time_ms=now, score=sequence, level=i) for i in range(size)])


def stored_ids(stub, pb, user):
    reply = stub.Recent(pb.RecentRequest(limit=1000, user_id=user), metadata=ADMIN, timeout=10)
    return [r.event.id for r in reply.events]


class Streamer:
    """Streams batches on its own thread, recording the acknowledged ids."""

    def __init__(self, stub, pb, user, batches, pause=0.0):
        self.acked, self.error = [], None
        self.sent = threading.Event()

        def requests():
            for sequence in range(1, batches + 1):
                yield make_batch(pb, sequence, user)
                time.sleep(pause)

        def run():
            try:
                for ack in stub.Stream(requests(), timeout=60):
                    self.acked += list(ack.accepted_ids)
            except grpc.RpcError as error:
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()


def test_sigkill_mid_stream_loses_no_acknowledged_event(stubs):
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    user = f"crash-{uuid.uuid4().hex[:10]}"
    proc, port, log = start_tally(env=DURABLE_ENV)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    streamer = Streamer(events_pb2_grpc.EventServiceStub(channel), pb, user, batches=80, pause=0.01)
    assert wait_for(lambda: len(streamer.acked) >= 200, timeout=30), open(log).read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    streamer.thread.join(timeout=30)
    channel.close()
    acked = list(streamer.acked)
    assert streamer.error is not None, "the stream must break when the server dies"

    proc, port, log = start_tally(env=DURABLE_ENV)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            assert wait_for(lambda: set(acked) <= set(stored_ids(stub, pb, user))), "acknowledged events missing after restart"
            stored = stored_ids(stub, pb, user)
            assert len(stored) == len(set(stored)), "an event was stored twice"
    finally:
        assert stop_tally(proc) == 0


@contextlib.contextmanager
def private_services(which):
    """Services of this test only (tools/services.sh with its own state folder): yields their
    URLs ({"REDIS_URL": ..., "DATABASE_URL": ...}) and a function that runs a command on Redis."""
    state = tempfile.mkdtemp(prefix="tally-test-")
    os.chmod(state, 0o755)  # PostgreSQL runs as its own user under root
    env = dict(os.environ, TALLY_STATE_DIR=state)
    script = str(ROOT / "tools" / "services.sh")
    try:
        subprocess.run(["bash", script, "start", which], env=env, check=True, capture_output=True)
        urls = dict(line.split("=", 1) for line in pathlib.Path(state, "services.env").read_text().splitlines())

        def control(command):
            subprocess.run(["bash", script, command, "redis"], env=env, check=True, capture_output=True)

        yield {name: urls[name] for name in ("REDIS_URL", "DATABASE_URL") if name in urls}, control
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def private_redis():
    """A Redis of this test only, beside the run's PostgreSQL."""
    with private_services("redis") as (urls, control):
        yield urls["REDIS_URL"], control


def test_redis_stopped_mid_stream_falls_back_and_loses_nothing(stubs, private_redis):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    url, control = private_redis
    user = f"fallback-{uuid.uuid4().hex[:10]}"
    proc, port, log = start_tally(env=dict(DURABLE_ENV, REDIS_URL=url))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            streamer = Streamer(stub, pb, user, batches=60, pause=0.03)
            assert wait_for(lambda: len(streamer.acked) >= 100, timeout=30)
            control("stop")
            assert wait_for(lambda: health.Check(health_pb2.HealthCheckRequest(service="tally.redis"), timeout=5).status
                            == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10)
            streamer.thread.join(timeout=60)
            assert streamer.error is None, streamer.error
            assert len(streamer.acked) == 600, "every batch acknowledged, Redis or not"
            control("start")
            assert wait_for(lambda: health.Check(health_pb2.HealthCheckRequest(service="tally.redis"), timeout=5).status
                            == health_pb2.HealthCheckResponse.SERVING, timeout=20)
            assert wait_for(lambda: set(streamer.acked) <= set(stored_ids(stub, pb, user)))
            stored = stored_ids(stub, pb, user)
            assert len(stored) == len(set(stored)) == 600
    finally:
        assert stop_tally(proc) == 0, open(log).read()


@contextlib.contextmanager
def two_instances():
    """Channels to two Tally instances sharing the run's Postgres and Redis."""
    first, first_port, _ = start_tally(env=PRODUCT_ENV)
    second, second_port, _ = start_tally(env=PRODUCT_ENV)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first_port}") as a, grpc.insecure_channel(f"127.0.0.1:{second_port}") as b:
            yield a, b
    finally:
        assert stop_tally(first) == 0
        assert stop_tally(second) == 0


def test_watch_on_one_instance_sees_submit_on_another(stubs):
    from tally.v1 import leaderboard_pb2 as lb, leaderboard_pb2_grpc
    board = f"tournament:{uuid.uuid4().hex[:12]}"
    with two_instances() as (a, b):
        updates = leaderboard_pb2_grpc.LeaderboardServiceStub(a).Watch(
            lb.WatchRequest(board_id=board, limit=5, min_interval_ms=100), timeout=30)
        assert next(updates).total == 0
        leaderboard_pb2_grpc.LeaderboardServiceStub(b).Submit(
            lb.SubmitRequest(board_id=board, user_id="far-away", score=77), metadata=ADMIN, timeout=10)
        update = next(updates)
        assert [(e.user_id, e.score) for e in update.entries] == [("far-away", 77)]
        updates.cancel()


def test_rank_on_one_instance_follows_submits_on_another(stubs):
    # Rank is answered from the board's mirror in each instance; an improvement made on
    # another instance reaches it by pub/sub, and the mirror answers with it.
    from tally.v1 import admin_pb2, admin_pb2_grpc, leaderboard_pb2 as lb, leaderboard_pb2_grpc
    board = f"tournament:{uuid.uuid4().hex[:12]}"
    with two_instances() as (a, b):
        reader, writer = leaderboard_pb2_grpc.LeaderboardServiceStub(a), leaderboard_pb2_grpc.LeaderboardServiceStub(b)
        admin = admin_pb2_grpc.AdminServiceStub(a)
        for index in range(20):
            writer.Submit(lb.SubmitRequest(board_id=board, user_id=f"m{index:02}", score=index), metadata=ADMIN, timeout=10)

        def mirror_stats():
            caches = admin.Stats(admin_pb2.StatsRequest(), metadata=ADMIN, timeout=10).caches
            return {c.name: c for c in caches}["board_mirror"]

        def mirrored():
            reader.Rank(lb.RankRequest(board_id=board, user_id="m00"), timeout=10)
            return mirror_stats().entries == 20
        assert wait_for(mirrored), "the board was never mirrored"
        before = mirror_stats()
        writer.Submit(lb.SubmitRequest(board_id=board, user_id="m00", score=100), metadata=ADMIN, timeout=10)

        def moved():
            reply = reader.Rank(lb.RankRequest(board_id=board, user_id="m00", neighbours=1), timeout=10)
            return reply.entry.rank == 1 and [e.user_id for e in reply.below] == ["m19"] and reply.total == 20
        assert wait_for(moved, timeout=10)
        assert mirror_stats().hits > before.hits, "answered from the mirror"


def test_scores_acknowledged_while_redis_is_down_reach_every_instance_after_the_writer_dies(stubs):
    """Redis killed; best scores acknowledged through instance A (written straight to Postgres);
    A killed with SIGKILL; Redis started again from its AOF (the board's old copy, still marked
    loaded): instance B answers every user's Rank with the Postgres truth within seconds, and
    from its mirror again once the board is repaired. A PostgreSQL of its own as well: the
    instances of other tests share the run's, with another Redis, and would repair that one."""
    with private_services("all") as (urls, control):
        two_instances_across_a_redis_crash(urls, control)


def two_instances_across_a_redis_crash(urls, control):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tally.v1 import admin_pb2, admin_pb2_grpc, events_pb2 as ev, events_pb2_grpc, leaderboard_pb2 as lb, leaderboard_pb2_grpc
    env = dict(DURABLE_ENV, **urls)
    run = uuid.uuid4().hex[:8]
    users = [f"behind-{run}-{index:02}" for index in range(24)]
    low = {user: 1_000 + index for index, user in enumerate(users)}
    high = {user: 5_000_000 + index for index, user in enumerate(users)}

    def game_ended(tag, scores):
        now = int(time.time() * 1000)
        return ev.TrackRequest(events=[ev.Event(id=f"{user}-{tag}", type="game_ended", user_id=user, score=score,
                                                client_time_ms=now) for user, score in scores.items()])

    a, a_port, a_log = start_tally(env=env)
    b, b_port, b_log = start_tally(env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{a_port}") as to_a, grpc.insecure_channel(f"127.0.0.1:{b_port}") as to_b:
            track_a = events_pb2_grpc.EventServiceStub(to_a)
            redis_a = health_pb2_grpc.HealthStub(to_a)
            boards_b = leaderboard_pb2_grpc.LeaderboardServiceStub(to_b)
            admin_b = admin_pb2_grpc.AdminServiceStub(to_b)

            def score_on_b(user):
                try:
                    return boards_b.Rank(lb.RankRequest(board_id="global", user_id=user), timeout=10).entry.score
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.NOT_FOUND:  # not persisted yet
                        return None
                    raise

            def scores_on_b():
                return {user: score_on_b(user) for user in users}

            def mirror_hits_on_b():
                caches = admin_b.Stats(admin_pb2.StatsRequest(), metadata=ADMIN, timeout=10).caches
                return {c.name: c for c in caches}["board_mirror"].hits

            assert len(track_a.Track(game_ended("low", low), timeout=10).accepted_ids) == len(users)
            assert wait_for(lambda: scores_on_b() == low, timeout=30), f"the queued scores never reached B: {scores_on_b()}"
            hits = mirror_hits_on_b()
            assert wait_for(lambda: scores_on_b() == low and mirror_hits_on_b() > hits, timeout=30), "B never mirrored the board"

            control("kill")
            assert wait_for(lambda: redis_a.Check(health_pb2.HealthCheckRequest(service="tally.redis"), timeout=5).status
                            == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10)
            reply = track_a.Track(game_ended("high", high), timeout=20)
            assert sorted(reply.accepted_ids) == sorted(f"{user}-high" for user in users), "acknowledged from Postgres"
            a.send_signal(signal.SIGKILL)
            a.wait()

            control("start")
            back = time.monotonic()
            assert wait_for(lambda: scores_on_b() == high, timeout=20), \
                f"B still answers {scores_on_b()}; log of B:\n{open(b_log).read()[-3000:]}"
            print(f"B answered the truth {time.monotonic() - back:.2f} s after Redis came back")
            hits = mirror_hits_on_b()
            assert wait_for(lambda: scores_on_b() == high and mirror_hits_on_b() > hits, timeout=30), \
                "the repaired board is answered from B's mirror again"
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
        assert stop_tally(b) == 0, open(b_log).read()
