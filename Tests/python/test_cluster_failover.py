"""Redis Cluster failover under load: events streamed through three Tally instances into a
3-master, 3-replica cluster (tools/services.sh cluster) while the master holding the events
queue is killed with SIGKILL. Its replica takes over; clients resend what was not
acknowledged. Every acknowledged event is in Postgres exactly once, the queue keeps draining,
and the global board holds each user's best acknowledged score.

Marked `cluster` (tools/test.sh runs it on its own; about a minute)."""
import contextlib
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, PRODUCT_ENV, ROOT, start_tally, stop_tally

pytestmark = pytest.mark.cluster

SCRIPT = str(ROOT / "tools" / "services.sh")
# Short leases so jobs claimed on the dead master come back soon; peer limit off (three
# clients send flat out).
CLUSTER_ENV = dict(PRODUCT_ENV, QUEUE_LEASE_MS="1500", EVENT_PEER_RATE_PER_MIN="0")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@contextlib.contextmanager
def private_cluster():
    """A Redis Cluster of this test only (its own state folder): yields its URL and a function
    running `services.sh cluster <command>`."""
    state = tempfile.mkdtemp(prefix="tally-test-")
    env = dict(os.environ, TALLY_STATE_DIR=state)

    def control(*command):
        return subprocess.run(["bash", SCRIPT, "cluster", *command], env=env, check=True, capture_output=True, text=True).stdout

    try:
        control("start")
        values = dict(line.split("=", 1) for line in pathlib.Path(state, "services.env").read_text().splitlines())
        yield values["REDIS_CLUSTER_URL"], control
    finally:
        subprocess.run(["bash", SCRIPT, "cluster", "stop"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def master_number_of(url, key):
    """Which master (1..3, by first slot, as `services.sh cluster kill-master N` counts) serves `key`."""
    host, port = url.removeprefix("redis+cluster://").split(",")[0].rsplit(":", 1)
    cli = ["redis-cli", "-h", host, "-p", port]
    slot = int(subprocess.run(cli + ["cluster", "keyslot", key], check=True, capture_output=True, text=True).stdout)
    starts = []
    for line in subprocess.run(cli + ["cluster", "nodes"], check=True, capture_output=True, text=True).stdout.splitlines():
        fields = line.split()
        if "master" in fields[2] and len(fields) > 8:
            ranges = [tuple(int(x) for x in r.split("-")) if "-" in r else (int(r), int(r)) for r in fields[8:] if not r.startswith("[")]
            starts.append((ranges[0][0], ranges))
    starts.sort()
    for number, (_, ranges) in enumerate(starts, start=1):
        if any(low <= slot <= high for low, high in ranges):
            return number
    raise AssertionError(f"no master serves slot {slot}")


class Client:
    """Sends batches of Track to one instance on its own thread; a batch not acknowledged
    (a retryable status) is sent again, same ids, until it is."""

    def __init__(self, pb, stub, name, users, batches, size=10):
        self.acked, self.best, self.statuses, self.error = set(), {}, [], None
        self.done_batches = 0

        def run():
            try:
                for sequence in range(batches):
                    user = users[sequence % len(users)]
                    score = random.randint(1, 1_000_000)
                    now = int(time.time() * 1000)
                    batch = [pb.Event(id=f"{name}-{sequence}-{i}", type="game_ended" if i == 0 else "level_completed",
                                      user_id=user, client_time_ms=now, score=score if i == 0 else 0, level=i) for i in range(size)]
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            reply = stub.Track(pb.TrackRequest(events=batch), timeout=10)
                            break
                        except grpc.RpcError as error:
                            self.statuses.append(error.code())
                            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                                raise
                            time.sleep(0.1)
                    acknowledged = set(reply.accepted_ids) | set(reply.duplicate_ids)
                    assert acknowledged == {e.id for e in batch}, f"batch {sequence}: {reply}"
                    self.acked |= acknowledged
                    self.best[user] = max(self.best.get(user, 0), score)
                    self.done_batches += 1
                    time.sleep(0.01)
            except Exception as error:  # reported by the test
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()


def wait_for(check, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def test_a_master_killed_mid_run_loses_no_acknowledged_event(stubs):
    from tally.v1 import events_pb2 as pb, events_pb2_grpc, leaderboard_pb2 as lb, leaderboard_pb2_grpc
    run = uuid.uuid4().hex[:8]
    with private_cluster() as (url, control):
        victim = master_number_of(url, "{q:events}")
        instances = [start_tally(env=dict(CLUSTER_ENV, REDIS_URL=url, TALLY_INSTANCE_ID=f"fo-{i}")) for i in range(3)]
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _, port, _ in instances]
        try:
            clients = [Client(pb, events_pb2_grpc.EventServiceStub(channel), f"fo-{run}-{index}",
                              [f"fo-{run}-{index}-u{u}" for u in range(4)], batches=90)
                       for index, channel in enumerate(channels)]
            assert wait_for(lambda: sum(c.done_batches for c in clients) >= 60, timeout=60), [c.error for c in clients]
            killed = control("kill-master", str(victim)).strip()
            assert killed, "no master was killed"
            for client in clients:
                client.thread.join(timeout=120)
            for client in clients:
                assert client.error is None, repr(client.error)
                assert set(client.statuses) <= RETRYABLE, client.statuses
            assert sum(c.done_batches for c in clients) == 270
            acked = set().union(*(c.acked for c in clients))
            assert len(acked) == 2700

            stub = events_pb2_grpc.EventServiceStub(channels[0])
            users = [user for c in clients for user in c.best]

            def stored():
                ids = []
                for user in users:
                    reply = stub.Recent(pb.RecentRequest(limit=1000, user_id=user), metadata=ADMIN, timeout=10)
                    ids += [r.event.id for r in reply.events]
                return ids
            # The queue drains on the promoted replica: every acknowledged event reaches Postgres.
            assert wait_for(lambda: acked <= set(stored())), f"missing: {len(acked - set(stored()))} of {len(acked)}"
            ids = stored()
            assert len(ids) == len(set(ids)) == len(acked), "an event was stored twice, or one nobody acknowledged"

            boards = leaderboard_pb2_grpc.LeaderboardServiceStub(channels[1])
            truth = {user: best for c in clients for user, best in c.best.items()}

            def boards_equal_truth():
                for user, best in truth.items():
                    try:
                        if boards.Rank(lb.RankRequest(board_id="global", user_id=user), timeout=10).entry.score != best:
                            return False
                    except grpc.RpcError:
                        return False
                return True
            assert wait_for(boards_equal_truth), "the global board differs from the best acknowledged scores"
        finally:
            for channel in channels:
                channel.close()
            codes = [stop_tally(proc) for proc, _, _ in instances]
            assert codes == [0, 0, 0], [open(log).read()[-3000:] for _, _, log in instances]
