#!/usr/bin/env python3
"""Codec cross-check fixtures: messages with randomised field values (unicode, empty,
extremes, large bytes, maps, oneofs, unknown enum values) encoded by Python's official
`protobuf` package.

    make_fixtures.py --out DIR [--count N] [--seed S]

Writes DIR/fixtures.jsonl (one {"type", "hex"} per message). The Swift CodecTests decode
each with the generated Swift type and write DIR/swift.jsonl with their own encoding;
Tests/python/test_codec_cross.py then parses those bytes with Python and requires the same
message back, which checks both directions.
"""
import argparse
import json
import pathlib
import random
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]

TEXTS = ["", "a", "héllo wörld", "日本語のテキスト", "emoji 🎮🏆", "tab\tnew\nline", "x" * 300]


def load_modules():
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="tally-fixture-stubs-")
    protos = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", *protos]) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)
    from bench.v1 import echo_pb2
    from tally.v1 import events_pb2, topup_pb2, presence_pb2, leaderboard_pb2, quiz_pb2, common_pb2
    # grpcio owns the top-level name "grpc", so the standard grpc.* protos load by path.
    import importlib.util

    def by_path(name, rel):
        spec = importlib.util.spec_from_file_location(name, f"{out}/{rel}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    health_pb2 = by_path("tally_fixture_health_pb2", "grpc/health/v1/health_pb2.py")
    reflection_pb2 = by_path("tally_fixture_reflection_pb2", "grpc/reflection/v1/reflection_pb2.py")
    return locals()


def text(r):
    return r.choice(TEXTS) if r.random() < 0.6 else "".join(chr(r.choice([r.randint(32, 126), r.randint(0x400, 0x4ff), r.randint(0x4e00, 0x4fff)])) for _ in range(r.randint(1, 40)))


def int64(r):
    return r.choice([0, 1, -1, 2**63 - 1, -2**63, r.randint(-2**40, 2**40)])


def int32(r):
    return r.choice([0, 1, -1, 2**31 - 1, -2**31, r.randint(-1000, 1000)])


def event(m, r):
    e = m["events_pb2"].Event(id=text(r), type=r.choice(["app_launched", "game_ended", "custom.x", ""]), user_id=text(r),
                              client_time_ms=int64(r), score=int64(r), game_mode=text(r), tournament_id=text(r),
                              duration_ms=int64(r), level=int32(r))
    for _ in range(r.randint(0, 5)):
        e.attributes[text(r)] = text(r)
    return e


def make(m, r, kind):
    if kind == "bench.v1.EchoRequest":
        size = r.choice([0, 1, 32, 1000, 70000, 1 << 20])
        return m["echo_pb2"].EchoRequest(payload=bytes(r.getrandbits(8) for _ in range(min(size, 4096))) * max(1, size // 4096), repeat=int32(r))
    if kind == "tally.v1.TrackRequest":
        return m["events_pb2"].TrackRequest(events=[event(m, r) for _ in range(r.randint(0, 20))])
    if kind == "tally.v1.EventAck":
        ack = m["events_pb2"].EventAck(sequence=r.choice([0, 1, 2**64 - 1]), accepted_ids=[text(r) for _ in range(r.randint(0, 5))])
        ack.rejected.add(id=text(r), index=int32(r), reason=text(r))
        return ack
    if kind == "tally.v1.TopupRequest":
        return m["topup_pb2"].TopupRequest(idempotency_key=text(r), phone_number="+49" + str(r.randint(10**9, 10**10)),
                                           amount=m["common_pb2"].Money(minor_units=int64(r), currency="EUR"), carrier=text(r))
    if kind == "tally.v1.Topup":
        return m["topup_pb2"].Topup(id=text(r), status=r.choice([0, 1, 2, 3, 4, 77]), created_at_ms=int64(r))
    if kind == "tally.v1.PresenceClientMessage":
        p = m["presence_pb2"]
        choice = r.randint(0, 4)
        if choice == 0:
            return p.PresenceClientMessage(hello=p.Hello(user_id=text(r), device=text(r)))
        if choice == 1:
            return p.PresenceClientMessage(heartbeat=p.Heartbeat(client_time_ms=int64(r)))
        if choice == 2:
            return p.PresenceClientMessage(status=p.StatusUpdate(status=r.choice([0, 1, 4, 99]), activity=text(r)))
        if choice == 3:
            return p.PresenceClientMessage(subscribe=p.Subscribe(user_ids=[text(r) for _ in range(r.randint(0, 10))]))
        return p.PresenceClientMessage()
    if kind == "tally.v1.SubmitAnswersRequest":
        q = m["quiz_pb2"]
        return q.SubmitAnswersRequest(quiz_id=text(r), answers=[
            q.QuizAnswer(user_id=text(r), question_id=text(r), answer=text(r), correct=r.random() < 0.5,
                         points=int32(r), response_time_ms=int32(r), answered_at_ms=int64(r)) for _ in range(r.randint(0, 50))])
    if kind == "tally.v1.WatchUpdate":
        lb = m["leaderboard_pb2"]
        return lb.WatchUpdate(total=int64(r), entries=[lb.LeaderboardEntry(rank=i, user_id=text(r), score=int64(r)) for i in range(r.randint(0, 10))])
    if kind == "grpc.health.v1.HealthCheckResponse":
        return m["health_pb2"].HealthCheckResponse(status=r.choice([0, 1, 2, 3, 42]))
    if kind == "grpc.reflection.v1.ServerReflectionResponse":
        rf = m["reflection_pb2"]
        resp = rf.ServerReflectionResponse(valid_host=text(r), original_request=rf.ServerReflectionRequest(list_services=text(r)))
        if r.random() < 0.5:
            resp.file_descriptor_response.file_descriptor_proto.extend([bytes(r.getrandbits(8) for _ in range(r.randint(0, 200))) for _ in range(3)])
        else:
            resp.error_response.error_code = int32(r)
            resp.error_response.error_message = text(r)
        return resp
    raise KeyError(kind)


KINDS = ["bench.v1.EchoRequest", "tally.v1.TrackRequest", "tally.v1.EventAck", "tally.v1.TopupRequest", "tally.v1.Topup",
         "tally.v1.PresenceClientMessage", "tally.v1.SubmitAnswersRequest", "tally.v1.WatchUpdate",
         "grpc.health.v1.HealthCheckResponse", "grpc.reflection.v1.ServerReflectionResponse"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=40, help="messages per type")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    modules = load_modules()
    r = random.Random(args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "fixtures.jsonl", "w") as f:
        for kind in KINDS:
            for _ in range(args.count):
                message = make(modules, r, kind)
                f.write(json.dumps({"type": kind, "hex": message.SerializeToString().hex()}) + "\n")
    print(f"wrote {len(KINDS) * args.count} fixtures to {out / 'fixtures.jsonl'}")


if __name__ == "__main__":
    main()
