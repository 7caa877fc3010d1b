#!/usr/bin/env python3
"""Cross-implementation fixtures for Tally's protobuf codec (protobuf-c via generated Swift)
against Python's official protobuf package.

    codec_fixtures.py generate --out DIR [--seed N] [--count N]
        Random messages of every type in proto/tally.protoset, written to DIR/fixtures.json:
        per case the message name, its Python encoding with fields in shuffled order (what
        Swift must decode), Python's deterministic encoding (what Swift must re-encode,
        byte for byte) and, for tally.testing.v1.AllTypes, the field values as JSON.
    codec_fixtures.py verify --dir DIR
        Parses what the Swift test wrote to DIR/swift/<case>.bin with Python and checks it
        equals the original message.

The test script runs (see Tests/CodecTests/ProtobufCrossImplementationTests.swift):
    .venv/bin/python3 Tests/python/codec_fixtures.py generate --out "$DIR"
    TALLY_CODEC_FIXTURES="$DIR" swift test --filter CodecTests
    .venv/bin/python3 Tests/python/codec_fixtures.py verify --dir "$DIR"
"""
import argparse
import json
import pathlib
import random
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor as FD

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOSET = ROOT / "proto" / "tally.protoset"
ALL_TYPES = "tally.testing.v1.AllTypes"

INT32 = (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32)
UINT32 = (FD.TYPE_UINT32, FD.TYPE_FIXED32)
INT64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64)
UINT64 = (FD.TYPE_UINT64, FD.TYPE_FIXED64)

# Text from several scripts and planes. No NUL: protobuf-c keeps strings NUL-terminated, so a
# NUL ends the string (a documented limitation of the codec).
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz0123456789 _-./:",
    "äöüßéèêçñåøæ",
    "абвгдежзийклмнопрст",
    "日本語中文한국어テスト",
    "🎮🏆👩🏽‍💻🇩🇪",
    "\u0301\u200d\ufeff\U0010fffd\x7f\x01",
]


def is_repeated(field) -> bool:
    # protobuf 6 deprecates `label`.
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == FD.LABEL_REPEATED


def load_pool():
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(PROTOSET.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # protoc writes dependencies first
        pool.Add(f)
    return fds, pool


def message_names(fds):
    names = []

    def walk(scope, messages):
        for m in messages:
            full = f"{scope}.{m.name}" if scope else m.name
            if not m.options.map_entry:
                names.append(full)
            walk(full, m.nested_type)

    for f in fds.file:
        walk(f.package, f.message_type)
    return names


class Generator:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int_in(self, low, high):
        edges = [low, high, 0, 1, -1, 127, 128, 300, 1 << 20]
        if self.rng.random() < 0.4:
            return self.rng.choice([e for e in edges if low <= e <= high])
        return self.rng.randint(low, high)

    def string(self):
        alphabet = self.rng.choice(ALPHABETS)
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.choice([0, 1, 3, 10, 40])))

    def scalar(self, field, packed=False):
        """A random value for `field`. -0.0 only in repeated fields: protobuf-c treats a
        floating-point -0.0 like 0 and leaves it out of the encoding (its field_is_zeroish
        compares with ==), so in an implicit-presence field it reads back as +0.0, the one
        known difference from Python's protobuf."""
        t = field.type
        zeros = [0.0, -0.0] if packed else [0.0]
        r = self.rng
        if t in INT32:
            return self.int_in(-(1 << 31), (1 << 31) - 1)
        if t in UINT32:
            return self.int_in(0, (1 << 32) - 1)
        if t in INT64:
            return self.int_in(-(1 << 63), (1 << 63) - 1)
        if t in UINT64:
            return self.int_in(0, (1 << 64) - 1)
        if t == FD.TYPE_BOOL:
            return r.random() < 0.5
        if t == FD.TYPE_DOUBLE:
            return r.choice(zeros + [1.5, -2.25, 1e308, -1e-308, 5e-324, float("inf"), float("-inf"),
                             r.uniform(-1e9, 1e9)])
        if t == FD.TYPE_FLOAT:
            value = r.choice(zeros + [1.5, 3.4028234663852886e38, 1.401298464324817e-45, float("-inf"),
                              r.uniform(-1e6, 1e6)])
            return struct.unpack("<f", struct.pack("<f", value))[0]
        if t == FD.TYPE_STRING:
            return self.string()
        if t == FD.TYPE_BYTES:
            return bytes(r.getrandbits(8) for _ in range(r.choice([0, 1, 5, 32, 300])))
        if t == FD.TYPE_ENUM:
            known = [v.number for v in field.enum_type.values]
            # proto3 enums are open: unknown numbers must survive too.
            return r.choice(known) if r.random() < 0.75 else self.int_in(-(1 << 31), (1 << 31) - 1)
        raise ValueError(f"unexpected type {t} of {field.full_name}")

    def fill(self, message, depth=0):
        r = self.rng
        descriptor = message.DESCRIPTOR
        oneof_choice = {o.name: r.choice(list(o.fields) + [None]) for o in descriptor.oneofs}
        for field in descriptor.fields:
            if field.containing_oneof is not None:
                if oneof_choice[field.containing_oneof.name] is not field:
                    continue
            elif r.random() < 0.3:
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                key_field = field.message_type.fields_by_name["key"]
                value_field = field.message_type.fields_by_name["value"]
                target = getattr(message, field.name)
                for _ in range(r.choice([0, 1, 3])):
                    key = self.scalar(key_field)
                    if value_field.type == FD.TYPE_MESSAGE:
                        if depth < 3:
                            self.fill(target[key], depth + 1)
                    else:
                        target[key] = self.scalar(value_field)
            elif is_repeated(field):
                target = getattr(message, field.name)
                for _ in range(r.choice([0, 1, 2, 5])):
                    if field.type == FD.TYPE_MESSAGE:
                        if depth < 3:
                            self.fill(target.add(), depth + 1)
                    else:
                        target.append(self.scalar(field, packed=True))
            elif field.type == FD.TYPE_MESSAGE:
                if depth < 3:
                    self.fill(getattr(message, field.name), depth + 1)
                    getattr(message, field.name).SetInParent()
            else:
                setattr(message, field.name, self.scalar(field))
        return message


def read_varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7


def shuffled_encoding(data: bytes, rng: random.Random) -> bytes:
    """The same message with its top-level fields in random order. Records of one field keep
    their relative order (it matters for repeated fields and last-one-wins scalars)."""
    records = []
    i = 0
    while i < len(data):
        start = i
        tag, i = read_varint(data, i)
        wire = tag & 7
        if wire == 0:
            _, i = read_varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            length, i = read_varint(data, i)
            i += length
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
        records.append((tag >> 3, data[start:i]))
    by_field = {}
    for number, record in records:
        by_field.setdefault(number, []).append(record)
    order = [number for number, _ in records]
    rng.shuffle(order)
    out = []
    for number in order:
        out.append(by_field[number].pop(0))
    return b"".join(out)


def to_json(message):
    """Field values in a form Swift reads exactly: 64-bit integers as strings, floating point
    as the hex of its little-endian bits, bytes as hex, unset messages as null."""

    def value(field, v):
        t = field.type
        if t == FD.TYPE_MESSAGE:
            return to_json(v)
        if t in INT64 or t in UINT64:
            return str(v)
        if t == FD.TYPE_DOUBLE:
            return struct.pack("<d", v).hex()
        if t == FD.TYPE_FLOAT:
            return struct.pack("<f", v).hex()
        if t == FD.TYPE_BYTES:
            return v.hex()
        return v

    out = {}
    for field in message.DESCRIPTOR.fields:
        v = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = [[value(key_field, k), value(value_field, v[k])] for k in sorted(v)]
        elif is_repeated(field):
            out[field.name] = [value(field, x) for x in v]
        elif field.containing_oneof is not None:
            if message.WhichOneof(field.containing_oneof.name) == field.name:
                out[field.containing_oneof.name] = {"case": field.name, "value": value(field, v)}
        elif field.type == FD.TYPE_MESSAGE:
            out[field.name] = to_json(v) if message.HasField(field.name) else None
        else:
            out[field.name] = value(field, v)
    return out


def generate(out: pathlib.Path, seed: int, count: int) -> None:
    fds, pool = load_pool()
    rng = random.Random(seed)
    gen = Generator(rng)
    cases = []
    for name in message_names(fds):
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        n = count if name == ALL_TYPES else max(3, count // 20)
        for index in range(n):
            message = gen.fill(cls())
            canonical = message.SerializeToString(deterministic=True)
            cases.append({
                "name": f"{name}-{index:04d}",
                "message": name,
                "wire": shuffled_encoding(canonical, rng).hex(),
                "canonical": canonical.hex(),
                "values": to_json(message) if name == ALL_TYPES else None,
            })
    out.mkdir(parents=True, exist_ok=True)
    from google.protobuf import __version__ as version
    (out / "fixtures.json").write_text(json.dumps(
        {"seed": seed, "protobuf": version, "cases": cases}, ensure_ascii=False, indent=1))
    print(f"codec_fixtures: {len(cases)} cases of {len(message_names(fds))} message types in {out}")


def verify(directory: pathlib.Path) -> int:
    _, pool = load_pool()
    fixtures = json.loads((directory / "fixtures.json").read_text())
    swift_dir = directory / "swift"
    checked = failed = 0
    for case in fixtures["cases"]:
        path = swift_dir / f"{case['name']}.bin"
        if not path.exists():
            print(f"missing Swift output {path}", file=sys.stderr)
            failed += 1
            continue
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(case["message"]))
        expected = cls.FromString(bytes.fromhex(case["canonical"]))
        actual = cls.FromString(path.read_bytes())
        checked += 1
        if actual != expected:
            print(f"{case['name']}: Swift's encoding parses differently in Python", file=sys.stderr)
            failed += 1
    print(f"codec_fixtures verify: {checked} Swift encodings parsed by Python, {failed} failures")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", required=True, type=pathlib.Path)
    g.add_argument("--seed", type=int, default=20261122)
    g.add_argument("--count", type=int, default=400, help="AllTypes cases (other types get count/20)")
    v = sub.add_parser("verify")
    v.add_argument("--dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.out, args.seed, args.count)
        return 0
    return verify(args.dir)


if __name__ == "__main__":
    sys.exit(main())
