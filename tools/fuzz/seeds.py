#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (tools/fuzz/*Fuzz), deterministically:

    seeds.py OUT_DIR     -> OUT_DIR/CodecFuzz, OUT_DIR/ValidatorFuzz, OUT_DIR/ConnectionFuzz

CodecFuzz: a control byte and gRPC DATA. ValidatorFuzz: a domain byte and a request message of that domain (protobuf encoded here).
ConnectionFuzz: HTTP/2 frames a client sends after its preface and SETTINGS (HPACK literals, by hand).
"""
import gzip
import pathlib
import sys



# -- protobuf, by hand (field numbers from proto/) ---------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def f_varint(number, value):
    return varint(number << 3) + varint(value)


def f_bytes(number, value):
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def grpc_frame(message, compressed=False):
    payload = gzip.compress(message, mtime=0) if compressed else message
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


# -- ValidatorFuzz (first byte: 0 events, 1 top-ups, 2 quiz answers, 3 rewards, 4 presence, 5 leaderboards)

def validator_seeds():
    event = (f_bytes(1, "e-1") + f_bytes(2, "game_ended") + f_bytes(3, "user-1") + f_varint(4, 1_767_225_000_000)
             + f_varint(5, 4200) + f_bytes(10, f_bytes(1, "k") + f_bytes(2, "v")))
    answer = f_bytes(1, "user-1") + f_bytes(2, "q-1") + f_bytes(3, "B") + f_varint(4, 1) + f_varint(5, 10) + f_varint(6, 1500)
    return {
        "events": bytes([0]) + f_bytes(1, event) + f_bytes(1, event.replace(b"e-1", b"e-2")),
        "events-min-score": bytes([0]) + f_bytes(1, f_bytes(1, "e") + f_bytes(2, "purchase") + f_bytes(3, "u") + f_varint(5, -(1 << 63))),
        "topup": bytes([1]) + f_bytes(1, "key-1") + f_bytes(2, "+4915112345678") + f_bytes(3, f_varint(1, 1500) + f_bytes(2, "EUR"))
                 + f_bytes(4, "vodafone-de"),
        "quiz-answers": bytes([2]) + f_bytes(1, "quiz-1") + f_bytes(2, answer) + f_bytes(2, answer),
        "rewards": bytes([3]) + f_bytes(1, "quiz-1") + f_bytes(2, f_varint(1, 1) + f_varint(2, 3) + f_bytes(3, "gold"))
                   + f_bytes(2, f_varint(1, 4) + f_varint(2, 10) + f_bytes(3, "silver")) + f_bytes(3, "d-1"),
        "presence-hello": bytes([4]) + f_bytes(1, f_bytes(1, "user-1") + f_bytes(2, "phone")),
        "presence-status": bytes([4]) + f_bytes(3, f_varint(1, 2) + f_bytes(2, "in a match")),
        "presence-subscribe": bytes([4]) + f_bytes(4, f_bytes(1, "a") + f_bytes(1, "b")),
        "leaderboard-submit": bytes([5]) + f_bytes(1, "tournament:spring") + f_bytes(2, "user-1") + f_varint(3, 99),
        "leaderboard-tournament": bytes([5]) + f_bytes(1, f_bytes(1, "spring") + f_bytes(2, "Spring cup") + f_varint(3, 1)
                                               + f_varint(4, 2) + f_varint(5, 100)),
    }


def codec_seeds():
    echo = f_bytes(1, b"x" * 32)
    return {
        "echo": bytes([0]) + grpc_frame(echo) * 2,
        "empty": bytes([4]) + grpc_frame(b""),
        "gzip": bytes([5]) + grpc_frame(echo, compressed=True),
    }


# -- ConnectionFuzz: frames after the preface (RFC 9113 framing, RFC 7541 literals without indexing)

def h2_frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_literal(name, value):
    name, value = name.encode(), value.encode()
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


def request_headers(path, **extra):
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
              ("content-type", "application/grpc"), ("te", "trailers")] + list(extra.items())
    return b"".join(hpack_literal(name, value) for name, value in fields)


def connection_seeds():
    echo = f_bytes(1, b"x" * 32)
    headers = request_headers("/bench.v1.Echo/Echo")
    end_headers, end_stream = 0x4, 0x1
    call = h2_frame(1, end_headers, 1, headers) + h2_frame(0, end_stream, 1, grpc_frame(echo))
    return {
        "echo-call": call,
        "two-calls": call + h2_frame(1, end_headers, 3, headers) + h2_frame(0, end_stream, 3, grpc_frame(echo)),
        "bidi-stream": h2_frame(1, end_headers, 1, request_headers("/bench.v1.Echo/EchoStream"))
                       + h2_frame(0, 0, 1, grpc_frame(echo)) * 3 + h2_frame(0, end_stream, 1, b""),
        "continuation": h2_frame(1, 0, 1, headers[:20]) + h2_frame(9, end_headers, 1, headers[20:])
                        + h2_frame(0, end_stream, 1, grpc_frame(echo)),
        "deadline-and-gzip": h2_frame(1, end_headers, 1, request_headers("/bench.v1.Echo/Echo", **{"grpc-timeout": "1m",
                                                                                                 "grpc-encoding": "gzip"}))
                             + h2_frame(0, end_stream, 1, grpc_frame(echo, compressed=True)),
        "reset-mid-call": h2_frame(1, end_headers, 1, headers) + h2_frame(3, 0, 1, (8).to_bytes(4, "big")),
        "control": h2_frame(4, 1, 0) + h2_frame(6, 0, 0, b"12345678") + h2_frame(8, 0, 0, (1 << 20).to_bytes(4, "big"))
                   + h2_frame(2, 0, 1, bytes(5)) + h2_frame(4, 0, 0, (4).to_bytes(2, "big") + (1 << 16).to_bytes(4, "big")),
        "health-then-goaway": h2_frame(1, end_headers, 1, request_headers("/grpc.health.v1.Health/Check"))
                              + h2_frame(0, end_stream, 1, grpc_frame(b"")) + h2_frame(7, 0, 0, bytes(8)),
    }


def main(out):
    for target, seeds in (("CodecFuzz", codec_seeds()), ("ValidatorFuzz", validator_seeds()), ("ConnectionFuzz", connection_seeds())):
        directory = pathlib.Path(out) / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (directory / f"seed-{name}").write_bytes(data)
    print(f"seeds written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
