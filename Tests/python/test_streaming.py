"""The four call shapes over the wire with grpcio, on the bench.v1.Echo methods."""
import grpc
import pytest

from conftest import eventually


def stub_of(channel):
    from bench.v1 import echo_pb2, echo_pb2_grpc
    return echo_pb2, echo_pb2_grpc.EchoStub(channel)


def test_bidi_echo_stream(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    requests = [echo_pb2.EchoRequest(payload=f"m{i}".encode()) for i in range(200)]
    replies = [r.payload for r in stub.EchoStream(iter(requests), timeout=20)]
    assert replies == [f"m{i}".encode() for i in range(200)]


def test_bidi_interleaved_ping_pong(stubs, channel):
    """Each response arrives before the next request is sent (no buffering until close)."""
    import queue
    import threading
    echo_pb2, stub = stub_of(channel)
    outbox = queue.Queue()

    def requests():
        while True:
            item = outbox.get()
            if item is None:
                return
            yield echo_pb2.EchoRequest(payload=item)

    responses = stub.EchoStream(requests(), timeout=20)
    for i in range(20):
        outbox.put(f"ping {i}".encode())
        assert next(responses).payload == f"ping {i}".encode()
    outbox.put(None)
    assert list(responses) == []


def test_client_streaming_collect(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    requests = (echo_pb2.EchoRequest(payload=bytes([i % 256]) * 100) for i in range(1000))
    reply = stub.Collect(requests, timeout=20)
    assert reply.payload == b"".join(bytes([i % 256]) * 100 for i in range(1000))


def test_client_streaming_large_upload_respects_flow_control(stubs, tally):
    """12 MiB in 1 MiB messages: twelve times the stream window, so credit must flow back."""
    from bench.v1 import echo_pb2, echo_pb2_grpc
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(tally, options=options) as ch:
        stub = echo_pb2_grpc.EchoStub(ch)
        chunk = b"z" * (1024 * 1024)
        reply = stub.Collect((echo_pb2.EchoRequest(payload=chunk) for _ in range(12)), timeout=60)
        assert len(reply.payload) == 12 * len(chunk)


def test_response_over_send_limit_is_resource_exhausted(stubs, channel):
    """Collecting 20 MiB makes a response over the 16 MiB send limit."""
    echo_pb2, stub = stub_of(channel)
    chunk = b"z" * (1024 * 1024)
    with pytest.raises(grpc.RpcError) as info:
        stub.Collect((echo_pb2.EchoRequest(payload=chunk) for _ in range(20)), timeout=60)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details()


def test_client_streaming_empty(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    assert stub.Collect(iter([]), timeout=10).payload == b""


def test_server_streaming_expand(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    replies = list(stub.Expand(echo_pb2.EchoRequest(payload=b"abc", repeat=5000), timeout=30))
    assert len(replies) == 5000 and all(r.payload == b"abc" for r in replies)


def test_server_streaming_invalid_argument(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Expand(echo_pb2.EchoRequest(payload=b"x", repeat=-1), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "repeat" in info.value.details()


def test_server_streaming_cancel_midway(stubs, own_tally):
    server = own_tally()
    echo_pb2, stub = stub_of(server.channel)
    call = stub.Expand(echo_pb2.EchoRequest(payload=b"y" * 1000, repeat=100000), timeout=30)
    for _ in range(10):
        next(call)
    call.cancel()
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.CANCELLED
    # The server saw the reset mid-stream and ended the call CANCELLED (it did not stream on).
    calls = eventually(lambda: (c := server.calls())["cancelled"] == 1 and c)
    assert calls and (calls["cancelled"], calls["failed"]) == (1, 1), calls
    # The server is fine afterwards.
    assert stub.Echo(echo_pb2.EchoRequest(payload=b"ok"), timeout=10).payload == b"ok"


def test_streaming_metadata_round_trip(stubs, channel):
    echo_pb2, stub = stub_of(channel)
    call = stub.EchoStream(iter([echo_pb2.EchoRequest(payload=b"a")]),
                           metadata=[("x-grpc-test-echo-initial", "v"), ("x-grpc-test-echo-trailing-bin", b"\x00\x01")],
                           timeout=10)
    assert [r.payload for r in call] == [b"a"]
    assert ("x-grpc-test-echo-initial", "v") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\x00\x01") in call.trailing_metadata()


def test_streaming_deadline(stubs, own_tally):
    import threading
    server = own_tally()
    echo_pb2, stub = stub_of(server.channel)
    done = threading.Event()

    def slow():
        yield echo_pb2.EchoRequest(payload=b"1")
        done.wait(30)
        yield echo_pb2.EchoRequest(payload=b"2")

    try:
        with pytest.raises(grpc.RpcError) as info:
            list(stub.EchoStream(slow(), timeout=1.0))
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server ended the call past its deadline: by its own timer (grpc-timeout) or by
        # grpcio's reset when the client's timer fired first, whichever reached it first.
        calls = eventually(lambda: (c := server.calls())["failed"] == 1 and c)
        assert calls and calls["deadline_exceeded"] + calls["cancelled"] == 1, calls
    finally:
        done.set()
