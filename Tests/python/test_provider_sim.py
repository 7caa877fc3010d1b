"""The provider simulator's own promises: it counts every charge (no deduplication), its
phone-number suffixes and control modes behave as documented, and /reset forgets everything.
Tally's adapter tests (Swift) and end-to-end scripts rely on these counts."""
import http.client
import json

import pytest

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools" / "topups"))
from provider_sim import ProviderSimulator  # noqa: E402


@pytest.fixture
def sim():
    with ProviderSimulator() as simulator:
        yield simulator


def call(sim, method, path, body=None, headers=None, timeout=5.0):
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def charge(sim, reference, phone="+4915112345678", amount=1500, currency="EUR", **kwargs):
    body = {"reference": reference, "phone_number": phone, "amount_minor_units": amount,
            "currency": currency, "carrier": ""}
    return call(sim, "POST", "/charges", body, {"Idempotency-Key": reference}, **kwargs)


def stats(sim):
    return call(sim, "GET", "/stats")[1]


def test_every_charge_counts_even_with_the_same_reference(sim):
    assert charge(sim, "r1") == (200, {"status": "succeeded", "provider_reference": "sim-1"})
    assert charge(sim, "r1") == (200, {"status": "succeeded", "provider_reference": "sim-2"})
    assert charge(sim, "r2", amount=700, currency="USD")[0] == 200
    s = stats(sim)
    assert s["charges"] == {"r1": 2, "r2": 1}
    assert s["total_charges"] == 3
    assert s["amounts"] == {"EUR": 3000, "USD": 700}
    # The status names the first charge of a reference.
    assert call(sim, "GET", "/charges/r1") == (200, {"status": "succeeded", "provider_reference": "sim-1"})
    assert call(sim, "GET", "/charges/nope")[0] == 404
    assert stats(sim)["status_queries"] == 2


def test_a_missing_idempotency_key_is_refused(sim):
    body = {"reference": "r1", "phone_number": "+491", "amount_minor_units": 1, "currency": "EUR", "carrier": ""}
    status, reply = call(sim, "POST", "/charges", body)
    assert status == 400 and reply["status"] == "declined"
    assert stats(sim)["total_charges"] == 0


@pytest.mark.parametrize("phone, status, body, charged", [
    ("+4915110000", 200, {"status": "declined", "reason": "number barred"}, 0),
    ("+4915110503", 503, {"error": "temporarily unavailable"}, 0),
    ("+4915110500", 500, {"error": "internal error after charging"}, 1),
])
def test_phone_suffixes(sim, phone, status, body, charged):
    assert charge(sim, "r", phone=phone) == (status, body)
    assert stats(sim)["total_charges"] == charged


def test_fail_503_applies_to_count_charges_then_ok(sim):
    assert call(sim, "POST", "/control", {"mode": "fail_503", "count": 2})[0] == 200
    assert charge(sim, "a")[0] == 503
    assert charge(sim, "a")[0] == 503
    assert charge(sim, "a")[0] == 200
    s = stats(sim)
    assert s["charges"] == {"a": 1} and s["charge_requests"] == 3


@pytest.mark.parametrize("mode, charged", [("reset_after_charge", 1), ("reset_before_charge", 0)])
def test_resets_drop_the_connection(sim, mode, charged):
    call(sim, "POST", "/control", {"mode": mode, "count": 1})
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        charge(sim, "r")
    assert stats(sim)["total_charges"] == charged
    assert charge(sim, "next")[0] == 200


def test_timeout_after_charge_charges_then_outlasts_the_client(sim):
    call(sim, "POST", "/control", {"mode": "timeout_after_charge", "delay_ms": 2000, "count": 1})
    with pytest.raises(TimeoutError):
        charge(sim, "r", timeout=0.3)
    assert stats(sim)["charges"] == {"r": 1}


def test_reset_forgets_everything(sim):
    charge(sim, "r")
    call(sim, "POST", "/control", {"mode": "fail_503"})
    assert call(sim, "POST", "/reset", {})[0] == 200
    assert stats(sim) == {"charges": {}, "total_charges": 0, "amounts": {}, "status_queries": 0, "charge_requests": 0}
    assert charge(sim, "r")[0] == 200
