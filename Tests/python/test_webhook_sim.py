"""The webhook simulator's own promises: it checks X-Tally-Signature with the shared secret,
records every arrival (no deduplication), and its control modes apply per destination and
for as many requests as asked. Tally's notification tests (Swift) rely on these records."""
import hashlib
import hmac
import http.client
import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools" / "quiz"))
from webhook_sim import WebhookSimulator  # noqa: E402

SECRET = "shh"


@pytest.fixture
def sim():
    with WebhookSimulator(secret=SECRET) as simulator:
        yield simulator


def call(sim, method, path, raw=b"", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    try:
        connection.request(method, path, body=raw, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        connection.close()


def notify(sim, notification_id, destination, secret=SECRET):
    raw = json.dumps({"id": notification_id, "destination": destination, "kind": "quiz.reward", "body": {"p": 1},
                      "attempt": 1}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return call(sim, "POST", "/notify", raw, {"X-Tally-Signature": signature, "X-Tally-Notification-Id": notification_id})


def control(sim, mode):
    assert call(sim, "POST", "/control", json.dumps(mode).encode())[0] == 200


def test_signatures_are_checked_and_every_arrival_counted(sim):
    assert notify(sim, "n1", "u1")[0] == 200
    assert notify(sim, "n1", "u1")[0] == 200
    assert notify(sim, "n2", "u1", secret="wrong")[0] == 200
    _, _, stats = call(sim, "GET", "/stats")
    assert stats["counts"] == {"n1": 2, "n2": 1} and stats["total"] == 3
    assert stats["invalid_signatures"] == 1
    assert [a["signature_valid"] for a in stats["arrivals"]] == [True, True, False]


def test_throttle_applies_to_its_destination_for_its_count(sim):
    control(sim, {"mode": "throttle", "count": 2, "retry_after": 3, "destination": "slow"})
    assert notify(sim, "a", "fast")[0] == 200
    status, _, body = notify(sim, "b", "slow")
    assert status == 429 and body["retry_after"] == 3
    control(sim, {"mode": "throttle", "count": 1, "retry_after": 4, "retry_after_in": "header"})
    status, headers, body = notify(sim, "c", "slow")
    assert status == 429 and headers["Retry-After"] == "4" and "retry_after" not in body
    assert notify(sim, "d", "slow")[0] == 200


def test_fail_and_reject_modes(sim):
    control(sim, {"mode": "fail", "count": 1, "status": 503})
    assert notify(sim, "a", "u")[0] == 503
    control(sim, {"mode": "reject", "count": 1, "status": 410})
    assert notify(sim, "a", "u")[0] == 410
    assert notify(sim, "a", "u")[0] == 200
    _, _, stats = call(sim, "GET", "/stats")
    assert stats["delivered"] == {"a": 1} and stats["counts"] == {"a": 3}
