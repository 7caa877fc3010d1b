"""Cross-implementation codec check: Python encoded the fixtures, Swift decoded them and
re-encoded (CodecTests writes swift.jsonl); Python must read back the very same messages."""
import json
import os
import pathlib

import pytest

FIXTURES = os.environ.get("TALLY_CODEC_FIXTURES")


@pytest.mark.skipif(not FIXTURES, reason="TALLY_CODEC_FIXTURES not set (tools/test.sh sets it)")
def test_swift_encoding_parses_to_the_same_messages():
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools" / "codegen"))
    import make_fixtures
    modules = make_fixtures.load_modules()
    from google.protobuf import symbol_database  # noqa: F401
    by_name = {}
    for module in modules.values():
        descriptor = getattr(module, "DESCRIPTOR", None)
        if descriptor is None:
            continue
        for name, message in descriptor.message_types_by_name.items():
            by_name[message.full_name] = getattr(module, name)
    original = [json.loads(l) for l in open(pathlib.Path(FIXTURES) / "fixtures.jsonl")]
    swift = [json.loads(l) for l in open(pathlib.Path(FIXTURES) / "swift.jsonl")]
    assert len(original) == len(swift) > 0
    for a, b in zip(original, swift):
        cls = by_name[a["type"]]
        expected = cls.FromString(bytes.fromhex(a["hex"]))
        actual = cls.FromString(bytes.fromhex(b["hex"]))
        assert actual == expected, f"{a['type']} changed across Swift"
