"""Fixtures for the over-the-wire tests with Python's grpcio, a gRPC client nobody here wrote.

The suite starts its own `tally serve` (binary from $TALLY_BIN, default .build/debug/tally)
on a free loopback port, with the benchmark Echo service on, and generates Python stubs from
proto/ with grpcio-tools into a temporary directory.

Against a Redis Cluster: `TALLY_TEST_REDIS_CLUSTER=1` (with REDIS_CLUSTER_URL from
`tools/services.sh cluster start`) makes every Tally the suite starts use the cluster as its
REDIS_URL; tests that start private Redis servers of their own keep those.
"""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import h2.config
import h2.connection

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

if os.environ.get("TALLY_TEST_REDIS_CLUSTER") == "1":
    os.environ["REDIS_URL"] = os.environ["REDIS_CLUSTER_URL"]


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: starts a Redis Cluster of its own and kills a master (about a minute)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tally exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"tally did not listen on port {port} within {timeout}s")


def wait_for(check, timeout=60.0, interval=0.2):
    """Polls `check` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="session")
def stubs():
    """Python modules generated from proto/ (bench.v1 and tally.v1)."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="tally-stubs-")
    proto_dir = ROOT / "proto"
    # grpc.health and grpc.reflection come with grpcio's packages; grpc.testing has its own
    # fixture in test_interop.py (its modules must not land inside grpcio's `grpc` package).
    files = [str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto")
             if p.parts[-3:-1] != ("health", "v1") and "reflection" not in p.parts and p.parts[-3:-1] != ("grpc", "testing")]
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", *files])
    assert rc == 0, "grpc_tools.protoc failed"
    sys.path.insert(0, out)
    return out


class RawClient:
    """An HTTP/2 connection driven by hand: PINGs and requests exactly when the test says."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def ping(self, n):
        self.conn.ping(n.to_bytes(8, "big"))
        self.flush()

    def events_until(self, wanted, timeout=10.0):
        """Reads until an event of type `wanted` arrives; returns it (None when the connection
        closed or the time ran out first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                return None
            for event in self.conn.receive_data(data):
                if isinstance(event, wanted):
                    return event
            self.flush()
        return None

    def close(self):
        self.sock.close()


# The admin key every test server runs with (admin and internal RPCs need it).
ADMIN_KEY = "test-admin-key"
ADMIN = (("x-admin-key", ADMIN_KEY),)
# Product services talk to the run's PostgreSQL and Redis (DATABASE_URL / REDIS_URL come
# from tools/test.sh); rate limits are raised so tests measure behaviour, not limits.
PRODUCT_ENV = {"ADMIN_KEY": ADMIN_KEY, "EVENT_USER_RATE_PER_MIN": "1000000", "LOG_LEVEL": "notice"}


def start_tally(*args: str, env: dict | None = None):
    binary = os.environ.get("TALLY_BIN", str(ROOT / ".build" / "debug" / "tally"))
    port = free_port()
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = tempfile.NamedTemporaryFile(prefix="tally-", suffix=".log", delete=False)
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=full_env)
    wait_for_port(port, proc)
    return proc, port, log.name


def stop_tally(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@pytest.fixture(scope="session")
def tally():
    """A running Tally; yields "127.0.0.1:PORT". Stopped with SIGTERM at the end, which must
    exit 0 (graceful shutdown)."""
    proc, port, log = start_tally("--bench-echo", "--max-receive-message-bytes", "4194304", env=PRODUCT_ENV)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        code = stop_tally(proc)
        if code != 0:
            print(open(log).read())
        assert code == 0, f"tally exited with {code} on SIGTERM"


@pytest.fixture
def channel(tally):
    import grpc
    with grpc.insecure_channel(tally, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as ch:
        yield ch


@pytest.fixture
def events(stubs, channel):
    """(events_pb2, EventServiceStub) on the session's Tally."""
    from tally.v1 import events_pb2, events_pb2_grpc
    return events_pb2, events_pb2_grpc.EventServiceStub(channel)


@pytest.fixture
def boards(stubs, channel):
    """(leaderboard_pb2, LeaderboardServiceStub) on the session's Tally."""
    from tally.v1 import leaderboard_pb2, leaderboard_pb2_grpc
    return leaderboard_pb2, leaderboard_pb2_grpc.LeaderboardServiceStub(channel)


def eventually(check, timeout=20.0):
    """Polls `check` until it returns something truthy or `timeout` seconds pass; returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


class OwnTally:
    """A Tally of one test's own: its call counters count that test's calls only."""

    def __init__(self, *args: str):
        import grpc
        from tally.v1 import admin_pb2, admin_pb2_grpc
        self.proc, self.port, self.log = start_tally("--bench-echo", *args, env={"ADMIN_KEY": ADMIN_KEY})
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._admin = admin_pb2, admin_pb2_grpc.AdminServiceStub(self.channel)

    def calls(self) -> dict:
        """The server's call counters (AdminService.Metrics `tally_calls_*`): ok, failed,
        cancelled and deadline_exceeded."""
        pb, stub = self._admin
        metrics = stub.Metrics(pb.MetricsRequest(prefix="tally_calls_"), metadata=ADMIN, timeout=10).metrics
        counts = {}
        for metric in metrics:
            if metric.name == "tally_calls_total":
                counts[metric.labels["outcome"]] = int(metric.value)
            else:
                counts[metric.name.removeprefix("tally_calls_").removesuffix("_total")] = int(metric.value)
        return counts

    def open_streams(self) -> int:
        """Streams open on the server, this Stats call's own included."""
        pb, stub = self._admin
        return stub.Stats(pb.StatsRequest(), metadata=ADMIN, timeout=10).instance.open_streams

    def stop(self) -> int:
        self.channel.close()
        return stop_tally(self.proc)


@pytest.fixture
def own_tally(stubs):
    """Starts `OwnTally(*flags)` on demand; each is stopped (and must exit 0) at the end."""
    started = []

    def start(*flags: str) -> OwnTally:
        started.append(OwnTally(*flags))
        return started[-1]

    yield start
    for server in started:
        code = server.stop()
        assert code == 0, open(server.log).read()
