"""gRPC conformance of Tally's wire layer, checked with grpcio."""
import queue
import socket
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import eventually, start_tally, stop_tally


def echo_stub(stubs, channel):
    from bench.v1 import echo_pb2, echo_pb2_grpc
    return echo_pb2, echo_pb2_grpc.EchoStub(channel)


@pytest.mark.parametrize("size", [0, 1, 32, 1000, 65_536, 1_000_000])
def test_unary_echo(stubs, channel, size):
    echo_pb2, stub = echo_stub(stubs, channel)
    payload = bytes(i % 251 for i in range(size))
    reply = stub.Echo(echo_pb2.EchoRequest(payload=payload), timeout=10)
    assert reply.payload == payload


def test_many_concurrent_unary_calls(stubs, channel):
    echo_pb2, stub = echo_stub(stubs, channel)
    futures = [stub.Echo.future(echo_pb2.EchoRequest(payload=str(i).encode()), timeout=20) for i in range(500)]
    assert [f.result().payload for f in futures] == [str(i).encode() for i in range(500)]


def test_metadata_round_trip(stubs, channel):
    echo_pb2, stub = echo_stub(stubs, channel)
    binary = bytes(range(256))
    reply, call = stub.Echo.with_call(
        echo_pb2.EchoRequest(payload=b"x"),
        metadata=[("x-grpc-test-echo-initial", "hello initial"), ("x-grpc-test-echo-trailing-bin", binary)],
        timeout=10)
    assert reply.payload == b"x"
    assert ("x-grpc-test-echo-initial", "hello initial") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", binary) in call.trailing_metadata()


def test_deadline_exceeded(stubs, own_tally):
    # The server's own deadline (its default for unary calls; the client sets none, so only
    # the server can end the call): the server ends it DEADLINE_EXCEEDED and counts it so.
    server = own_tally("--default-deadline-ms", "1500")
    echo_pb2, stub = echo_stub(stubs, server.channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Echo(echo_pb2.EchoRequest(payload=b"slow"), metadata=[("x-tally-echo-delay-ms", "60000")])
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    calls = server.calls()
    assert (calls["deadline_exceeded"], calls["cancelled"], calls["failed"]) == (1, 0, 1)

    # A client deadline (grpc-timeout): grpcio also resets the stream when its own timer
    # fires, which may reach the server before the server's timer does. Either way the server
    # ends the call then, not when the handler would have answered.
    with pytest.raises(grpc.RpcError) as info:
        stub.Echo(echo_pb2.EchoRequest(payload=b"slow"), metadata=[("x-tally-echo-delay-ms", "60000")], timeout=1.0)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    calls = eventually(lambda: (c := server.calls())["failed"] == 2 and c)
    assert calls and calls["deadline_exceeded"] + calls["cancelled"] == 2, calls
    # The connection is still fine afterwards.
    assert stub.Echo(echo_pb2.EchoRequest(payload=b"ok"), timeout=10).payload == b"ok"


def test_cancellation(stubs, own_tally):
    server = own_tally()
    echo_pb2, stub = echo_stub(stubs, server.channel)
    future = stub.Echo.future(echo_pb2.EchoRequest(payload=b"x"), metadata=[("x-tally-echo-delay-ms", "60000")])
    # The server has the call (its stream and the Stats call's own are open) before it is cancelled.
    assert eventually(lambda: server.open_streams() == 2)
    assert future.cancel()
    assert future.cancelled()
    # The server saw the reset: it ended the call CANCELLED (the handler was not left running).
    calls = eventually(lambda: (c := server.calls())["cancelled"] == 1 and c)
    assert calls and (calls["cancelled"], calls["deadline_exceeded"], calls["failed"]) == (1, 0, 1), calls
    assert stub.Echo(echo_pb2.EchoRequest(payload=b"after"), timeout=10).payload == b"after"


def test_gzip_compressed_request(stubs, tally):
    from bench.v1 import echo_pb2, echo_pb2_grpc
    with grpc.insecure_channel(tally, compression=grpc.Compression.Gzip) as ch:
        stub = echo_pb2_grpc.EchoStub(ch)
        payload = b"compress me " * 1000
        assert stub.Echo(echo_pb2.EchoRequest(payload=payload), timeout=10).payload == payload


def test_oversize_message_is_resource_exhausted(stubs, channel):
    echo_pb2, stub = echo_stub(stubs, channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Echo(echo_pb2.EchoRequest(payload=b"x" * (5 * 1024 * 1024)), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_malformed_protobuf_is_internal(channel):
    call = channel.unary_unary("/bench.v1.Echo/Echo", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)  # field 1 claims a 4 GiB length
    assert info.value.code() == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize("path,fragment", [
    ("/bench.v1.Echo/Nope", "unknown method Nope"),
    ("/no.such.Service/Call", "unknown service no.such.Service"),
])
def test_unknown_method_is_unimplemented(channel, path, fragment):
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert fragment in info.value.details()


def test_health_check(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert stub.Check(health_pb2.HealthCheckRequest(service="bench.v1.Echo"), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_streams_current_status(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    responses = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
    first = next(responses)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    responses.cancel()
    unknown = stub.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    unknown.cancel()


def test_reflection_lists_services(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    for name in ["bench.v1.Echo", "grpc.health.v1.Health", "tally.v1.EventService", "tally.v1.LeaderboardService",
                 "tally.v1.TopupService", "tally.v1.QuizService", "tally.v1.PresenceService", "tally.v1.AdminService"]:
        assert name in services


def test_reflection_describes_methods(channel):
    from google.protobuf.descriptor_pool import DescriptorPool
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    echo = pool.FindServiceByName("bench.v1.Echo")
    assert echo.FindMethodByName("Echo").input_type.full_name == "bench.v1.EchoRequest"
    events = pool.FindServiceByName("tally.v1.EventService")
    stream = events.FindMethodByName("Stream")
    assert stream.client_streaming and stream.server_streaming


def test_reflection_unknown_symbol_is_not_found(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")
    response = next(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_graceful_shutdown_drains_in_flight_calls(stubs):
    """SIGTERM while a call is in flight: the call completes, new calls are refused, exit 0."""
    from bench.v1 import echo_pb2, echo_pb2_grpc
    # A grace period longer than any wait below: the call in flight is never cut short.
    proc, port, _ = start_tally("--bench-echo", "--shutdown-grace-ms", "60000")
    code_holder = {}
    stopper = threading.Thread(target=lambda: code_holder.setdefault("code", stop_tally(proc)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        states = []
        ch.subscribe(states.append)
        stub = echo_pb2_grpc.EchoStub(ch)
        assert stub.Echo(echo_pb2.EchoRequest(payload=b"warm"), timeout=10).payload == b"warm"
        # The call in flight is a bidi stream the test holds open for as long as it needs.
        outbox = queue.Queue()
        in_flight = stub.EchoStream(iter(outbox.get, None), timeout=60)
        outbox.put(echo_pb2.EchoRequest(payload=b"before"))
        assert next(in_flight).payload == b"before"  # the server has the call

        stopper.start()

        def listener_closed():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True
        # Draining: the listener is closed (the process still runs: the call is in flight).
        assert eventually(listener_closed)
        assert proc.poll() is None
        # A new call is refused, on a new channel and on this one once its connection got
        # GOAWAY (grpcio then leaves READY for new calls, while the call in flight goes on).
        # (A channel of its own subchannels: grpcio would otherwise share ch's connection.)
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as fresh:
            with pytest.raises(grpc.RpcError) as info:
                echo_pb2_grpc.EchoStub(fresh).Echo(echo_pb2.EchoRequest(payload=b"new"), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # (Polled for less than stop_tally waits before it kills the server.)
        assert eventually(lambda: states[-1] != grpc.ChannelConnectivity.READY, timeout=10), "no GOAWAY"
        with pytest.raises(grpc.RpcError) as info:
            stub.Echo(echo_pb2.EchoRequest(payload=b"new"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE

        # The call in flight still works, and completes.
        outbox.put(echo_pb2.EchoRequest(payload=b"during"))
        assert next(in_flight).payload == b"during"
        outbox.put(None)
        assert list(in_flight) == []
        assert in_flight.code() == grpc.StatusCode.OK
        stopper.join(timeout=30)
    assert code_holder.get("code") == 0


def test_default_deadline_of_streaming_calls(stubs, own_tally):
    # A bidi stream without grpc-timeout gets the server's streaming default when one is set
    # (--default-stream-deadline-ms; none by default, for long-lived streams): the server ends
    # the open stream DEADLINE_EXCEEDED and counts it so, while the client waits to send more.
    server = own_tally("--default-stream-deadline-ms", "1500")
    echo_pb2, stub = echo_stub(stubs, server.channel)
    outgoing = queue.Queue()
    outgoing.put(echo_pb2.EchoRequest(payload=b"first"))
    replies = stub.EchoStream(iter(outgoing.get, None))
    assert next(replies).payload == b"first"
    ended = queue.Queue()

    def wait_for_the_end():
        try:
            ended.put(next(replies, "the stream ended OK"))
        except grpc.RpcError as error:
            ended.put(error)
    threading.Thread(target=wait_for_the_end, daemon=True).start()
    try:
        outcome = ended.get(timeout=30)  # a bound on the wait only: without a server deadline it never ends
    except queue.Empty:
        replies.cancel()
        pytest.fail("the server never ended the stream")
    finally:
        outgoing.put(None)
    assert isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode.DEADLINE_EXCEEDED, outcome
    calls = eventually(lambda: (c := server.calls())["deadline_exceeded"] == 1 and c)
    assert calls and calls["deadline_exceeded"] == 1 and calls["cancelled"] == 0, calls
