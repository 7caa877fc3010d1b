"""Connection policy as gRPC specifies it, seen from a raw HTTP/2 client (hyper-h2) and from
grpcio: keepalive enforcement (GOAWAY ENHANCE_YOUR_CALM "too_many_pings") and the maximum
connection age (GOAWAY, calls in flight finish within the grace, clients reconnect)."""
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import h2.errors
import pytest

from conftest import RawClient, start_tally, stop_tally


@pytest.fixture
def server():
    started = []

    def start(*flags):
        proc, port, log = start_tally("--bench-echo", *flags)
        started.append((proc, log))
        return port

    yield start
    for proc, log in started:
        assert stop_tally(proc) == 0, open(log).read()


def test_pings_without_calls_get_goaway_too_many_pings(server):
    port = server()
    client = RawClient(port)
    try:
        assert client.events_until(h2.events.RemoteSettingsChanged) is not None
        for n in range(4):
            client.ping(n)
            time.sleep(0.05)
        goaway = client.events_until(h2.events.ConnectionTerminated)
        assert goaway is not None, "no GOAWAY after four PINGs without a call"
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert goaway.additional_data == b"too_many_pings"
    finally:
        client.close()


def test_pings_at_the_permitted_rate_keep_the_connection(server):
    """With calls not required and a 200 ms minimum, PINGs 300 ms apart are fine: after five of
    them the connection still acknowledges a PING."""
    port = server("--keepalive-min-ping-ms", "200", "--keepalive-permit-without-calls")
    client = RawClient(port)
    try:
        for n in range(5):
            client.ping(n)
            ack = client.events_until(h2.events.PingAckReceived, timeout=5)
            assert ack is not None and ack.ping_data == n.to_bytes(8, "big"), f"PING {n} was not acknowledged"
            time.sleep(0.3)
    finally:
        client.close()


def test_pings_faster_than_the_minimum_during_a_call_get_goaway(server):
    """A call open does not excuse PINGs closer than the minimum interval."""
    port = server("--keepalive-min-ping-ms", "60000", "--keepalive-permit-without-calls")
    client = RawClient(port)
    try:
        # A client-streaming call left open (no END_STREAM).
        client.conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/bench.v1.Echo/Collect"),
                                     (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"), ("te", "trailers")])
        client.flush()
        for n in range(4):
            client.ping(n)
        goaway = client.events_until(h2.events.ConnectionTerminated)
        assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        client.close()


def test_max_connection_age_sends_goaway_and_calls_in_flight_finish(server, stubs):
    from bench.v1 import echo_pb2, echo_pb2_grpc
    port = server("--max-connection-age-ms", "1000", "--max-connection-age-grace-ms", "10000")
    raw = RawClient(port)
    try:
        started = time.monotonic()
        goaway = raw.events_until(h2.events.ConnectionTerminated, timeout=5)
        assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        assert time.monotonic() - started >= 0.85  # the age, less at most its 10% jitter
    finally:
        raw.close()

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        release = threading.Event()

        def slow():
            yield echo_pb2.EchoRequest(payload=b"a")
            release.wait(20)
            yield echo_pb2.EchoRequest(payload=b"b")

        # A call that outlives the connection's age (about 1 s) by far less than the grace.
        call = stub.Collect.future(slow(), timeout=30)
        time.sleep(2.5)
        release.set()
        assert call.result(timeout=15).payload == b"ab"
        # The channel reconnects: new calls work after the GOAWAY.
        for _ in range(3):
            assert stub.Echo(echo_pb2.EchoRequest(payload=b"again"), timeout=10).payload == b"again"


def test_calls_past_the_age_grace_are_cancelled(server, stubs):
    from bench.v1 import echo_pb2, echo_pb2_grpc
    port = server("--max-connection-age-ms", "500", "--max-connection-age-grace-ms", "500")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        never = threading.Event()

        def endless():
            yield echo_pb2.EchoRequest(payload=b"a")
            never.wait(30)

        call = stub.Collect.future(endless(), timeout=30)
        with pytest.raises(grpc.RpcError) as info:
            call.result(timeout=15)
        never.set()
        assert info.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), info.value
