"""gRPC's standard interop test cases (grpc/grpc doc/interop-test-descriptions.md), run by
grpcio against `tally serve --interop-test-service`, each asserting what the description says.

Where a description lets a client check more than grpcio shows (the compressed flag of a
response message), a raw HTTP/2 client (hyper-h2) reads the frames. "max streaming message
sizes" is not a case of that document: it is the exact/too-big message size checks other
implementations run (grpc-java's maxInboundSize/maxOutboundSize), here against both sides'
limits.
"""
import gzip
import pathlib
import queue
import sys
import tempfile

import grpc
import h2.events
import pytest

from conftest import ROOT, OwnTally, RawClient, eventually

# The server's receive limit in this module (the max streaming message size cases).
MAX_RECEIVE = 1024 * 1024


@pytest.fixture(scope="module")
def pb():
    """The interop protos as Python modules. grpc's own layout (`src.proto.grpc.testing`):
    under proto/ they import each other as grpc/testing/..., which would put the modules
    inside grpcio's own `grpc` package."""
    from grpc_tools import protoc
    import grpc_tools

    out = pathlib.Path(tempfile.mkdtemp(prefix="tally-interop-stubs-"))
    package = out / "src" / "proto" / "grpc" / "testing"
    package.mkdir(parents=True)
    for name in ("empty", "messages", "test"):
        text = (ROOT / "proto" / "grpc" / "testing" / f"{name}.proto").read_text()
        (package / f"{name}.proto").write_text(text.replace('import "grpc/testing/', 'import "src/proto/grpc/testing/'))
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    files = [f"src/proto/grpc/testing/{name}.proto" for name in ("empty", "messages", "test")]
    assert protoc.main(["protoc", f"-I{out}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]) == 0
    sys.path.insert(0, str(out))
    from src.proto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

    class Modules:
        empty = empty_pb2
        messages = messages_pb2
        grpc = test_pb2_grpc

    return Modules


@pytest.fixture(scope="module")
def server(stubs, pb):
    """A Tally serving grpc.testing.TestService (and its admin service, whose call counters
    show what the server saw of cancelled calls)."""
    tally = OwnTally("--interop-test-service", "--max-receive-message-bytes", str(MAX_RECEIVE))
    yield tally
    assert tally.stop() == 0, open(tally.log).read()


@pytest.fixture
def stub(server, pb):
    return pb.grpc.TestServiceStub(server.channel)


def zeros(n):
    return bytes(n)


def large_request(pb, **fields):
    m = pb.messages
    return m.SimpleRequest(response_size=314159, payload=m.Payload(body=zeros(271828)), **fields)


class Requests:
    """A request stream the test feeds one message at a time; it half-closes only when told,
    so a call can stay open (cancel_after_*, timeout_on_sleeping_server)."""

    _END = object()

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, message):
        self._queue.put(message)

    def half_close(self):
        self._queue.put(self._END)

    def __iter__(self):
        while (message := self._queue.get()) is not self._END:
            yield message


def raw_unary(port, path, message, headers=()):
    """One call over a hand-driven HTTP/2 connection: (response headers, [(compressed flag,
    message bytes)], trailers). Response messages are decompressed when flagged."""
    client = RawClient(port)
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-accept-encoding", "identity,gzip"), *headers])
    client.conn.send_data(stream, b"\x00" + len(message).to_bytes(4, "big") + message, end_stream=True)
    client.flush()
    response_headers, body, trailers = {}, bytearray(), {}
    ended = False
    client.sock.settimeout(20)
    while not ended:
        data = client.sock.recv(65536)
        assert data, "connection closed before the call ended"
        for event in client.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                response_headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                client.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
        client.flush()
    client.close()
    messages = []
    while body:
        flag, length = body[0], int.from_bytes(body[1:5], "big")
        payload = bytes(body[5:5 + length])
        messages.append((flag, gzip.decompress(payload) if flag == 1 else payload))
        del body[:5 + length]
    return response_headers, messages, trailers


def test_empty_unary(pb, stub):
    reply = stub.EmptyCall(pb.empty.Empty(), timeout=10)
    assert isinstance(reply, pb.empty.Empty)
    assert reply.SerializeToString() == b""


def test_large_unary(pb, stub):
    reply = stub.UnaryCall(large_request(pb), timeout=10)
    assert reply.payload.type == pb.messages.COMPRESSABLE
    assert reply.payload.body == zeros(314159)


def test_client_compressed_unary(pb, stub):
    m = pb.messages
    # The feature probe: an uncompressed message that expects to be compressed is refused.
    with pytest.raises(grpc.RpcError) as probe:
        stub.UnaryCall(large_request(pb, expect_compressed=m.BoolValue(value=True)), timeout=10)
    assert probe.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    compressed = stub.UnaryCall(
        large_request(pb, expect_compressed=m.BoolValue(value=True)), compression=grpc.Compression.Gzip, timeout=10)
    assert compressed.payload.body == zeros(314159)
    plain = stub.UnaryCall(large_request(pb, expect_compressed=m.BoolValue(value=False)), timeout=10)
    assert plain.payload.body == zeros(314159)


def test_server_compressed_unary(pb, stub, server):
    m = pb.messages
    for wanted in (True, False):
        reply = stub.UnaryCall(large_request(pb, response_compressed=m.BoolValue(value=wanted)), timeout=10)
        assert reply.payload.body == zeros(314159)
        # The compressed flag of the response message, which grpcio does not show (the raw
        # client sends no payload: one DATA frame within the initial window).
        request = m.SimpleRequest(response_size=314159, response_compressed=m.BoolValue(value=wanted)).SerializeToString()
        headers, messages, trailers = raw_unary(server.port, "/grpc.testing.TestService/UnaryCall", request)
        assert trailers["grpc-status"] == "0"
        assert [flag for flag, _ in messages] == [1 if wanted else 0]
        assert headers.get("grpc-encoding") == ("gzip" if wanted else None)
        assert m.SimpleResponse.FromString(messages[0][1]).payload.body == zeros(314159)


def test_server_compressed_streaming(pb, server):
    # Not in the list; run because CompressedResponse is per message in streams.
    m = pb.messages
    request = m.StreamingOutputCallRequest(response_parameters=[
        m.ResponseParameters(size=31415, compressed=m.BoolValue(value=True)),
        m.ResponseParameters(size=92653, compressed=m.BoolValue(value=False))]).SerializeToString()
    headers, messages, trailers = raw_unary(server.port, "/grpc.testing.TestService/StreamingOutputCall", request)
    assert trailers["grpc-status"] == "0" and headers["grpc-encoding"] == "gzip"
    assert [flag for flag, _ in messages] == [1, 0]
    sizes = [len(m.StreamingOutputCallResponse.FromString(payload).payload.body) for _, payload in messages]
    assert sizes == [31415, 92653]


def test_client_streaming(pb, stub):
    m = pb.messages
    requests = [m.StreamingInputCallRequest(payload=m.Payload(body=zeros(n))) for n in (27182, 8, 1828, 45904)]
    reply = stub.StreamingInputCall(iter(requests), timeout=10)
    assert reply.aggregated_payload_size == 74922


def test_server_streaming(pb, stub):
    m = pb.messages
    request = m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=n) for n in (31415, 9, 2653, 58979)])
    replies = list(stub.StreamingOutputCall(request, timeout=10))
    assert [r.payload.body for r in replies] == [zeros(n) for n in (31415, 9, 2653, 58979)]


def test_ping_pong(pb, stub):
    m = pb.messages
    requests = Requests()
    call = stub.FullDuplexCall(iter(requests), timeout=20)
    sizes = []
    for request_size, response_size in ((27182, 31415), (8, 9), (1828, 2653), (45904, 58979)):
        requests.send(m.StreamingOutputCallRequest(
            response_parameters=[m.ResponseParameters(size=response_size)], payload=m.Payload(body=zeros(request_size))))
        reply = next(call)  # each reply before the next request: full duplex, not buffered
        assert reply.payload.body == zeros(response_size)
        sizes.append(len(reply.payload.body))
    requests.half_close()
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK
    assert sizes == [31415, 9, 2653, 58979]


def test_empty_stream(pb, stub):
    call = stub.FullDuplexCall(iter([]), timeout=10)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_custom_metadata(pb, stub):
    m = pb.messages
    metadata = (("x-grpc-test-echo-initial", "test_initial_metadata_value"), ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
    reply, call = stub.UnaryCall.with_call(large_request(pb), metadata=metadata, timeout=10)
    assert reply.payload.body == zeros(314159)
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in call.trailing_metadata()

    request = m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=314159)], payload=m.Payload(body=zeros(271828)))
    stream = stub.FullDuplexCall(iter([request]), metadata=metadata, timeout=10)
    assert [r.payload.body for r in stream] == [zeros(314159)]
    assert stream.code() == grpc.StatusCode.OK
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in stream.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in stream.trailing_metadata()


@pytest.mark.parametrize("message", [
    "test status message",
    # special_status_message: whitespace and Unicode in and beyond the BMP.
    "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n",
])
def test_status_code_and_message(pb, stub, message):
    m = pb.messages
    status = m.EchoStatus(code=2, message=message)
    with pytest.raises(grpc.RpcError) as unary:
        stub.UnaryCall(m.SimpleRequest(response_status=status), timeout=10)
    assert (unary.value.code(), unary.value.details()) == (grpc.StatusCode.UNKNOWN, message)

    stream = stub.FullDuplexCall(iter([m.StreamingOutputCallRequest(response_status=status)]), timeout=10)
    with pytest.raises(grpc.RpcError):
        list(stream)
    assert (stream.code(), stream.details()) == (grpc.StatusCode.UNKNOWN, message)


def test_status_message_is_percent_encoded_on_the_wire(pb, server):
    """The special status message as it goes over the wire: grpc-message percent-encodes every
    byte outside printable ASCII, and '%' (PROTOCOL-HTTP2.md). grpcio also takes raw bytes, so
    only a hand-driven connection sees the difference."""
    m = pb.messages
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n 100%"
    request = m.SimpleRequest(response_status=m.EchoStatus(code=2, message=message)).SerializeToString()
    headers, _, trailers = raw_unary(server.port, "/grpc.testing.TestService/UnaryCall", request)
    status = {**headers, **trailers}  # a call failing before any message may end trailers-only
    expected = "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in message.encode())
    assert status["grpc-status"] == "2"
    assert status["grpc-message"] == expected


def test_unimplemented_method(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.UnimplementedCall(pb.empty.Empty(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_service(pb, server):
    stub = pb.grpc.UnimplementedServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.UnimplementedCall(pb.empty.Empty(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cancel_after_begin(pb, stub, server):
    cancelled_before = server.calls().get("cancelled", 0)
    requests = Requests()
    future = stub.StreamingInputCall.future(iter(requests), timeout=20)
    # The server has the call open (its stream and the Stats call's own) before it is cancelled.
    assert eventually(lambda: server.open_streams() == 2)
    assert future.cancel()
    assert future.code() == grpc.StatusCode.CANCELLED
    requests.half_close()
    # The server saw the reset and ended its side CANCELLED.
    assert eventually(lambda: server.calls().get("cancelled", 0) == cancelled_before + 1)


def test_cancel_after_first_response(pb, stub, server):
    m = pb.messages
    cancelled_before = server.calls().get("cancelled", 0)
    requests = Requests()
    call = stub.FullDuplexCall(iter(requests), timeout=20)
    requests.send(m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=31415)], payload=m.Payload(body=zeros(27182))))
    assert next(call).payload.body == zeros(31415)
    assert call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED
    requests.half_close()
    assert eventually(lambda: server.calls().get("cancelled", 0) == cancelled_before + 1)


def test_timeout_on_sleeping_server(pb, stub):
    m = pb.messages
    requests = Requests()
    requests.send(m.StreamingOutputCallRequest(payload=m.Payload(body=zeros(27182))))
    call = stub.FullDuplexCall(iter(requests), timeout=0.001)  # and the client waits: no half-close
    with pytest.raises(grpc.RpcError):
        list(call)
    assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    requests.half_close()


def body_for_message_size(message_type, size, wrap):
    """The payload body length that makes `wrap(body)` serialize to exactly `size` bytes."""
    n = size - 16
    while len(wrap(message_type, zeros(n)).SerializeToString()) < size:
        n += 1
    assert len(wrap(message_type, zeros(n)).SerializeToString()) == size
    return n


def test_max_streaming_message_sizes_server_receive(pb, stub):
    """The server's receive limit (--max-receive-message-bytes) on a client stream: a message
    of exactly the limit is taken, one byte more is RESOURCE_EXHAUSTED."""
    m = pb.messages

    def wrap(cls, body):
        return cls(payload=m.Payload(body=body))

    n = body_for_message_size(m.StreamingInputCallRequest, MAX_RECEIVE, wrap)
    reply = stub.StreamingInputCall(iter([wrap(m.StreamingInputCallRequest, zeros(n))]), timeout=20)
    assert reply.aggregated_payload_size == n
    with pytest.raises(grpc.RpcError) as info:
        stub.StreamingInputCall(iter([wrap(m.StreamingInputCallRequest, zeros(n + 1))]), timeout=20)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"larger than max ({MAX_RECEIVE + 1} vs. {MAX_RECEIVE})" in info.value.details()

    # The same on a bidi stream, after a message that fit.
    fits = m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=1)])
    over = m.StreamingOutputCallRequest(payload=m.Payload(body=zeros(MAX_RECEIVE)))
    call = stub.FullDuplexCall(iter([fits, over]), timeout=20)
    with pytest.raises(grpc.RpcError):
        list(call)
    assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_max_streaming_message_sizes_client_receive(pb, server):
    """Messages the server sends are exactly the size asked for: a client whose receive limit
    is that size takes them, one byte less refuses them with RESOURCE_EXHAUSTED."""
    m = pb.messages
    limit = 100_000

    def wrap(cls, body):
        return cls(payload=m.Payload(body=body))

    n = body_for_message_size(m.StreamingOutputCallResponse, limit, wrap)
    request = m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=n), m.ResponseParameters(size=n)])
    for client_limit, ok in ((limit, True), (limit - 1, False)):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=[("grpc.max_receive_message_length", client_limit)]) as channel:
            call = pb.grpc.TestServiceStub(channel).StreamingOutputCall(request, timeout=20)
            if ok:
                assert [len(r.payload.body) for r in call] == [n, n]
            else:
                with pytest.raises(grpc.RpcError):
                    list(call)
                assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_interop_service_is_off_unless_asked(stubs, pb, own_tally):
    """Without --interop-test-service the server does not serve it."""
    plain = own_tally()
    with pytest.raises(grpc.RpcError) as info:
        pb.grpc.TestServiceStub(plain.channel).EmptyCall(pb.empty.Empty(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
