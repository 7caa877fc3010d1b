#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (tools/fuzz/*Fuzz), deterministically:

    seeds.py OUT_DIR     -> OUT_DIR/CodecFuzz, OUT_DIR/ConnectionFuzz, OUT_DIR/ValidatorFuzz

CodecFuzz: a control byte and gRPC DATA. ConnectionFuzz: a read-size byte and the HTTP/2
frames a client sends after its preface (hyper-h2 encodes them): calls of every shape to the
services the target serves, compressed and with deadlines, and connection-level frames.
ValidatorFuzz: a domain byte and a request message of that domain (protobuf encoded here).
"""
import gzip
import pathlib
import sys

import h2.config
import h2.connection


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


# -- ConnectionFuzz ----------------------------------------------------------------------

def h2_client():
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.data_to_send()  # the harness sends the preface itself
    return conn


def call(conn, path, messages, headers=(), end=True):
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "fuzz"),
                               ("content-type", "application/grpc"), ("te", "trailers"), *headers])
    for i, message in enumerate(messages):
        conn.send_data(stream, message, end_stream=end and i == len(messages) - 1)
    if end and not messages:
        conn.end_stream(stream)
    return stream


def connection_seeds():
    simple = f_varint(2, 64) + f_bytes(3, f_bytes(2, b"\0" * 32))  # SimpleRequest: response_size, payload
    status = f_bytes(7, f_varint(1, 2) + f_bytes(2, "test status message"))
    output = f_bytes(2, f_varint(1, 10)) + f_bytes(2, f_varint(1, 20) + f_bytes(3, f_varint(1, 1)))
    echo = f_bytes(1, b"hello")
    seeds = {}

    conn = h2_client()
    call(conn, "/bench.v1.Echo/Echo", [grpc_frame(echo)])
    seeds["echo-unary"] = conn.data_to_send()

    conn = h2_client()
    call(conn, "/grpc.testing.TestService/UnaryCall", [grpc_frame(simple + f_bytes(6, f_varint(1, 1)))],
         headers=[("grpc-accept-encoding", "gzip"), ("x-grpc-test-echo-initial", "v"), ("x-grpc-test-echo-trailing-bin", "q6ur")])
    call(conn, "/grpc.testing.TestService/UnaryCall", [grpc_frame(simple + status)])
    seeds["interop-unary"] = conn.data_to_send()

    conn = h2_client()
    call(conn, "/grpc.testing.TestService/UnaryCall", [grpc_frame(simple + f_bytes(8, f_varint(1, 1)), compressed=True)],
         headers=[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity,gzip")])
    seeds["interop-compressed"] = conn.data_to_send()

    conn = h2_client()
    call(conn, "/grpc.testing.TestService/FullDuplexCall", [grpc_frame(output), grpc_frame(output + status)],
         headers=[("grpc-timeout", "5S")])
    call(conn, "/grpc.testing.TestService/StreamingInputCall", [grpc_frame(f_bytes(1, f_bytes(2, b"\0" * 8)))] * 3)
    call(conn, "/grpc.testing.TestService/StreamingOutputCall", [grpc_frame(output)])
    call(conn, "/grpc.testing.TestService/HalfDuplexCall", [grpc_frame(output)] * 2)
    seeds["interop-streams"] = conn.data_to_send()

    conn = h2_client()
    call(conn, "/bench.v1.Echo/EchoStream", [grpc_frame(echo)] * 2, end=False)
    conn.ping(b"12345678")
    conn.increment_flow_control_window(1 << 20)
    stream = call(conn, "/bench.v1.Echo/Expand", [grpc_frame(echo + f_varint(2, 50))])
    conn.reset_stream(stream)
    call(conn, "/grpc.health.v1.Health/Check", [grpc_frame(b"")], headers=[("grpc-timeout", "1m")])
    call(conn, "/grpc.health.v1.Health/Watch", [grpc_frame(b"")])
    call(conn, "/no.such.Service/Method", [grpc_frame(b"")])
    seeds["mixed"] = conn.data_to_send()

    conn = h2_client()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100, h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20})
    call(conn, "/grpc.testing.TestService/StreamingOutputCall", [grpc_frame(output)])
    conn.close_connection()
    seeds["settings-goaway"] = conn.data_to_send()

    # The read-size byte: 0 (one byte per read), 3 (49 bytes), 255 (4 KiB).
    return {f"{name}-{size}": bytes([size]) + data for name, data in seeds.items() for size in (0, 3, 255)}


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


def main(out):
    for target, seeds in (("CodecFuzz", codec_seeds()), ("ConnectionFuzz", connection_seeds()), ("ValidatorFuzz", validator_seeds())):
        directory = pathlib.Path(out) / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (directory / f"seed-{name}").write_bytes(data)
    print(f"seeds written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
