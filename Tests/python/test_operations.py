"""The operator's HTTP port: /metrics parsed by Prometheus' own Python parser after known calls
(gRPC's OpenTelemetry names, labels, histogram buckets), /healthz, and /readyz flipping while
Redis is stopped and while the server drains."""
import json
import signal
import threading
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN, PRODUCT_ENV, eventually, free_port, start_tally, stop_tally
from test_durability import private_services


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; (None, reason) while nothing answers
    there: the operations endpoint starts beside the gRPC server, so it may bind a moment after
    the gRPC port a test waited for (and `eventually` goes on polling instead of failing)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except urllib.error.URLError as error:
        return None, str(error.reason)


def samples(port):
    """{(sample name, frozenset(labels)): value} from /metrics, through prometheus_client's parser."""
    status, text = get(port, "/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def served(stubs):
    """A Tally with the operations port; yields (grpc port, metrics port)."""
    metrics_port = free_port()
    proc, port, log = start_tally("--bench-echo", "--metrics-port", str(metrics_port), env=PRODUCT_ENV)
    try:
        yield port, metrics_port
    finally:
        assert stop_tally(proc) == 0, open(log).read()


def test_metrics_count_calls_per_method_and_status_with_otel_names(served):
    port, metrics_port = served
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo = channel.unary_unary("/bench.v1.Echo/Echo", request_serializer=None, response_deserializer=None)
        for _ in range(7):
            assert echo(b"\x0a\x0bhello world", timeout=10) == b"\x0a\x0bhello world"
        for path in ["/no.such.Service/A", "/bench.v1.Echo/Nope", "/x.y.Z/Q"]:
            with pytest.raises(grpc.RpcError) as info:
                channel.unary_unary(path, request_serializer=None, response_deserializer=None)(b"", timeout=10)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    found = samples(metrics_port)
    echo_ok = frozenset({("grpc_method", "bench.v1.Echo/Echo"), ("grpc_status", "OK")})
    assert found[("grpc_server_call_started_total", frozenset({("grpc_method", "bench.v1.Echo/Echo")}))] == 7
    assert found[("grpc_server_call_duration_seconds_count", echo_ok)] == 7
    # Every bucket holds the calls at most that long; +Inf holds them all.
    assert found[("grpc_server_call_duration_seconds_bucket", echo_ok | {("le", "+Inf")})] == 7
    assert found[("grpc_server_call_duration_seconds_bucket", echo_ok | {("le", "0.00001")})] == 0
    # 13 bytes in and out per call (the message, not its 5-byte gRPC frame header).
    assert found[("grpc_server_call_rcvd_total_compressed_message_size_bytes_sum", echo_ok)] == 7 * 13
    assert found[("grpc_server_call_sent_total_compressed_message_size_bytes_sum", echo_ok)] == 7 * 13
    assert found[("grpc_server_call_sent_total_compressed_message_size_bytes_bucket", echo_ok | {("le", "1024.0")})] == 7
    # Unknown methods share one label, so clients cannot grow the label set.
    other = frozenset({("grpc_method", "other"), ("grpc_status", "UNIMPLEMENTED")})
    assert found[("grpc_server_call_duration_seconds_count", other)] == 3
    assert not [name for name, labels in found if ("grpc_method", "/x.y.Z/Q") in labels or ("grpc_method", "x.y.Z/Q") in labels]
    # Tally's own, from the same registry.
    assert found[("tally_calls_total", frozenset({("outcome", "ok")}))] >= 7
    assert found[("tally_db_pool_connections_max", frozenset({("pool", "primary")}))] > 0
    assert ("tally_queue_jobs", frozenset({("queue", "events"), ("state", "waiting")})) in found
    assert found[("process_resident_memory_bytes", frozenset())] > 1_000_000


def test_admin_metrics_reads_the_same_registry(served):
    port, metrics_port = served
    from tally.v1 import admin_pb2, admin_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo = channel.unary_unary("/bench.v1.Echo/Echo", request_serializer=None, response_deserializer=None)
        for _ in range(4):
            echo(b"", timeout=10)
        metrics = admin_pb2_grpc.AdminServiceStub(channel).Metrics(
            admin_pb2.MetricsRequest(prefix="grpc_server_call_started"), metadata=ADMIN, timeout=10).metrics
    started = {m.labels["grpc_method"]: m.value for m in metrics}
    assert started["bench.v1.Echo/Echo"] == 4
    assert all(m.name == "grpc_server_call_started_total" for m in metrics)
    assert samples(metrics_port)[("grpc_server_call_started_total", frozenset({("grpc_method", "bench.v1.Echo/Echo")}))] == 4


def test_events_acknowledged_and_persisted_are_counted(stubs):
    """A Redis of this test's own: only this instance's workers take the events, so its
    persisted count is theirs."""
    import time
    import uuid
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    with private_services("redis") as (urls, _):
        metrics_port = free_port()
        proc, port, log = start_tally("--metrics-port", str(metrics_port), env=dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"]))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = events_pb2_grpc.EventServiceStub(channel)
                events = [pb.Event(id=uuid.uuid4().hex, type="app_launched", user_id="ops-user", client_time_ms=int(time.time() * 1000))
                          for _ in range(5)]
                stub.Track(pb.TrackRequest(events=events), timeout=10)
                stub.Track(pb.TrackRequest(events=events[:2]), timeout=10)
            found = samples(metrics_port)
            assert found[("tally_events_acknowledged_total", frozenset({("outcome", "accepted")}))] == 5
            assert found[("tally_events_acknowledged_total", frozenset({("outcome", "duplicate")}))] == 2
            decided = ("tally_rate_limit_decisions_total", frozenset({("limit", "events_user"), ("decision", "allowed")}))
            assert found[decided] == 2
            assert eventually(lambda: samples(metrics_port).get(("tally_events_persisted_total", frozenset())) == 5, timeout=20)
        finally:
            assert stop_tally(proc) == 0, open(log).read()


def test_healthz_names_the_process(served):
    _, metrics_port = served
    status, body = get(metrics_port, "/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["pid"] > 0 and health["process_resident_memory_bytes"] > 0
    assert get(metrics_port, "/nope")[0] == 404


def test_readyz_flips_while_redis_is_stopped(stubs):
    with private_services("redis") as (urls, control):
        metrics_port = free_port()
        proc, port, log = start_tally("--metrics-port", str(metrics_port), env=dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"]))
        try:
            assert eventually(lambda: get(metrics_port, "/readyz")[0] == 200, timeout=10)
            control("stop")
            assert eventually(lambda: get(metrics_port, "/readyz")[0] == 503, timeout=10)
            body = json.loads(get(metrics_port, "/readyz")[1])
            assert body["dependencies"]["redis"] == "down" and body["dependencies"]["postgres"] == "up"
            assert body["status"] == "degraded"
            assert get(metrics_port, "/healthz")[0] == 200
            control("start")
            assert eventually(lambda: get(metrics_port, "/readyz")[0] == 200, timeout=15)
        finally:
            assert stop_tally(proc) == 0, open(log).read()


def test_readyz_is_503_while_draining(stubs):
    """SIGTERM with a call in flight: the server drains (the call still finishes) and /readyz
    answers 503 "draining" until the process ends."""
    from bench.v1 import echo_pb2, echo_pb2_grpc
    metrics_port = free_port()
    proc, port, log = start_tally("--bench-echo", "--metrics-port", str(metrics_port), "--shutdown-grace-ms", "30000", env=PRODUCT_ENV)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = echo_pb2_grpc.EchoStub(channel)
            release = threading.Event()

            def slow_requests():
                yield echo_pb2.EchoRequest(payload=b"a")
                release.wait(20)  # holds the client-streaming call open

            call = stub.Collect.future(slow_requests(), timeout=30)
            assert eventually(lambda: get(metrics_port, "/readyz")[0] == 200, timeout=10)
            proc.send_signal(signal.SIGTERM)

            def draining():
                status, body = get(metrics_port, "/readyz")
                return status == 503 and json.loads(body)["status"] == "draining"
            assert eventually(draining, timeout=10)
            release.set()
            assert call.result(timeout=20) is not None
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_calls_trace_id_is_in_its_log_lines_and_its_jobs(stubs):
    """LOG_FORMAT=json, LOG_LEVEL=debug: the call sent with a traceparent logs with its trace id,
    and so does the worker that persists the events it queued (a Redis of the test's own, so
    this instance's worker takes the job); a call without one gets a trace of its own."""
    import time
    import uuid
    from tally.v1 import events_pb2 as pb, events_pb2_grpc
    trace_id = uuid.uuid4().hex
    parent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    with private_services("redis") as (urls, _):
        proc, port, log = start_tally(env=dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], LOG_FORMAT="json", LOG_LEVEL="debug"))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = events_pb2_grpc.EventServiceStub(channel)
                event = pb.Event(id=uuid.uuid4().hex, type="app_launched", user_id="trace-user", client_time_ms=int(time.time() * 1000))
                stub.Track(pb.TrackRequest(events=[event]), metadata=(("traceparent", parent),), timeout=10)
                stub.Track(pb.TrackRequest(events=[pb.Event(id=uuid.uuid4().hex, type="app_launched", user_id="trace-user",
                                                            client_time_ms=int(time.time() * 1000))]), timeout=10)

            def lines():
                found = []
                for text in open(log).read().splitlines():
                    try:
                        found.append(json.loads(text))
                    except ValueError:
                        pass
                return found

            def traced(message):
                return [line for line in lines() if line.get("trace_id") == trace_id and line.get("message") == message]
            assert eventually(lambda: traced("rpc") and traced("job done"), timeout=20), "no call and job lines with the trace"
            assert traced("job done")[0]["queue"] == "events"
            calls = [line for line in lines() if line.get("message") == "rpc" and line.get("path") == "/tally.v1.EventService/Track"]
            others = {line["trace_id"] for line in calls} - {trace_id}
            assert len(others) == 1 and len(others.pop()) == 32, "the call without a traceparent got no trace of its own"
            assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines())
        finally:
            assert stop_tally(proc) == 0, open(log).read()
