"""Reads on a PostgreSQL streaming standby (DATABASE_READ_URL): they go to the standby while it
serves, to the primary while it lags past DATABASE_READ_MAX_LAG_MS, and keep answering from the
primary when the standby is stopped mid-load. The primary and its standby are this test's own
(tools/services.sh start postgres + replica start in a private state folder)."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, PRODUCT_ENV, ROOT, start_tally, stop_tally, wait_for

SCRIPT = str(ROOT / "tools" / "services.sh")


class Standby:
    """This test's primary and standby, and control of the standby."""

    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="tally-replica-")
        os.chmod(self.state, 0o755)  # PostgreSQL runs as its own user under root
        self.env = dict(os.environ, TALLY_STATE_DIR=self.state)
        # A Redis of its own too: the events queue of the run's Redis has other instances'
        # workers (the session's tally), which would persist this test's events into their database.
        self.services("start")
        self.services("replica", "start")
        self.urls = dict(line.split("=", 1) for line in pathlib.Path(self.state, "services.env").read_text().splitlines())

    def services(self, *args):
        subprocess.run(["bash", SCRIPT, *args], env=self.env, check=True, capture_output=True)

    def sql(self, statement):
        """One statement on the standby, as psql prints it."""
        binary = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        command = [str(binary), "-h", "127.0.0.1", "-p", self.urls["TALLY_PG_REPLICA_PORT"], "-U", "tally", "-d", "tally", "-tAq", "-c", statement]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    def close(self):
        subprocess.run(["bash", SCRIPT, "stop"], env=self.env, capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture
def standby():
    standby = Standby()
    try:
        yield standby
    finally:
        standby.close()


def test_reads_follow_the_standby_and_fall_back_to_the_primary(stubs, standby):
    from tally.v1 import admin_pb2, admin_pb2_grpc, events_pb2 as pb, events_pb2_grpc
    env = dict(PRODUCT_ENV, DATABASE_URL=standby.urls["DATABASE_URL"], DATABASE_READ_URL=standby.urls["DATABASE_READ_URL"],
               REDIS_URL=standby.urls["REDIS_URL"],
               DATABASE_READ_MAX_LAG_MS="500", DATABASE_READ_CHECK_MS="100", EVENT_PEER_RATE_PER_MIN="0")
    proc, port, log = start_tally(env=env)
    user = f"replica-{uuid.uuid4().hex[:10]}"
    written = []

    def track(tag):
        event_id = f"{user}-{tag}"
        reply = events.Track(pb.TrackRequest(events=[pb.Event(id=event_id, type="level_completed", user_id=user,
                                                              client_time_ms=int(time.time() * 1000), level=1)]), timeout=10)
        assert list(reply.accepted_ids) == [event_id]
        written.append(event_id)
        return event_id

    def recent():
        return {r.event.id for r in events.Recent(pb.RecentRequest(limit=1000, user_id=user), metadata=ADMIN, timeout=10).events}

    def pools():
        return {p.name: p for p in admin.Stats(admin_pb2.StatsRequest(), metadata=ADMIN, timeout=10).pools}

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = events_pb2_grpc.EventServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)

            # Serving: reads go to the standby (its counter moves, the primary's does not, and
            # the standby has Tally's sessions), and see what the primary stored.
            assert wait_for(lambda: pools()["replica"].read_state == "serving", timeout=30), open(log).read()[-3000:]
            first = track("first")
            assert wait_for(lambda: first in recent(), timeout=30)
            before = pools()
            for _ in range(20):
                recent()
            after = pools()
            assert after["replica"].reads - before["replica"].reads >= 20
            assert after["primary"].reads == before["primary"].reads
            assert int(standby.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tally'")) >= 1

            # Lagging: replay paused on the standby, so what the primary stores next is not
            # there; past the lag bound reads go to the primary and see it.
            standby.sql("SELECT pg_wal_replay_pause()")
            paused = track("while-replay-paused")
            assert wait_for(lambda: pools()["replica"].read_state == "lagging", timeout=30), open(log).read()[-3000:]
            assert wait_for(lambda: paused in recent(), timeout=30)
            assert pools()["primary"].read_fallbacks > 0
            standby.sql("SELECT pg_wal_replay_resume()")
            assert wait_for(lambda: pools()["replica"].read_state == "serving", timeout=30)

            # Stopped mid-load: readers and a writer keep going; every read answers, from the
            # primary, and sees the events stored after the stop.
            failures, reads, stop = [], [0], threading.Event()

            def read_loop():
                while not stop.is_set():
                    try:
                        recent()
                        reads[0] += 1
                    except grpc.RpcError as error:
                        failures.append(f"{error.code()}: {error.details()}")

            def write_loop():
                sequence = 0
                while not stop.is_set():
                    sequence += 1
                    track(f"load-{sequence}")
                    time.sleep(0.02)

            threads = [threading.Thread(target=read_loop, daemon=True) for _ in range(3)]
            threads.append(threading.Thread(target=write_loop, daemon=True))
            for thread in threads:
                thread.start()
            assert wait_for(lambda: reads[0] >= 30, timeout=30)
            standby.services("replica", "stop")
            assert wait_for(lambda: pools()["replica"].read_state == "down", timeout=30)
            at_stop = reads[0]
            assert wait_for(lambda: reads[0] >= at_stop + 50, timeout=60)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            assert failures == [], f"reads failed while the standby stopped: {failures[:5]}"
            assert wait_for(lambda: set(written) <= recent(), timeout=30), "reads must see what the primary stored"
            down = pools()
            assert down["replica"].lag_ms == -1 and down["primary"].read_fallbacks > after["primary"].read_fallbacks

            # Back: once a check reaches it again, reads return to the standby.
            standby.services("replica", "start")
            assert wait_for(lambda: pools()["replica"].read_state == "serving", timeout=60)
            again = pools()["replica"].reads
            recent()
            assert pools()["replica"].reads > again
    finally:
        assert stop_tally(proc) == 0, open(log).read()[-3000:]
