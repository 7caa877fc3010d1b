"""Top-ups through the HTTP provider adapter against a real HTTP provider simulator
(tools/topups/provider_sim.py) that counts every charge: each fault ends with the top-up
final and charged exactly once (or never, when declined)."""
import json
import signal
import sys
import urllib.request
import uuid

import grpc
import pytest

from conftest import ADMIN, PRODUCT_ENV, ROOT, eventually, start_tally, stop_tally
from test_durability import private_services
from test_topups import Partners

sys.path.insert(0, str(ROOT / "tools" / "topups"))
from provider_sim import ProviderSimulator  # noqa: E402


def call(url, path, body=None):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def provider_world(stubs):
    """A simulator, a private Redis (so no other instance takes these jobs) and a Tally calling
    the simulator with short timeouts."""
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    simulator = ProviderSimulator().start()
    with private_services("redis") as (urls, _):
        env = dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], TOPUP_PROVIDER="http", TOPUP_PROVIDER_URL=simulator.url,
                   TOPUP_PROVIDER_TIMEOUT_MS="400", TOPUP_RETRY_BASE_MS="50", TOPUP_RETRY_MAX_MS="200")
        proc, port, log = start_tally(env=env)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                partners = Partners.on(channel)
                _, _, secret = partners.key()
                yield partners, secret, simulator
        finally:
            simulator.stop()
            assert stop_tally(proc) == 0, open(log).read()


def charges(simulator, reference):
    return call(simulator.url, "/stats")["charges"].get(reference, 0)


@pytest.mark.parametrize("fault, phone, final_status, charged", [
    (None, "+4915112345678", "SUCCEEDED", 1),
    (None, "+4915112340000", "FAILED", 0),                                           # declined
    ({"mode": "fail_503", "count": 2}, "+4915112345678", "SUCCEEDED", 1),            # retryable twice
    ({"mode": "timeout_after_charge", "delay_ms": 1000, "count": 1}, "+4915112345678", "SUCCEEDED", 1),
    ({"mode": "reset_after_charge", "count": 1}, "+4915112345678", "SUCCEEDED", 1),
    ({"mode": "reset_before_charge", "count": 1}, "+4915112345678", "SUCCEEDED", 1),
    (None, "+4915112340500", "SUCCEEDED", 1),                                        # charged, then 500
])
def test_every_provider_outcome_ends_final_and_charged_at_most_once(provider_world, fault, phone, final_status, charged):
    partners, secret, simulator = provider_world
    call(simulator.url, "/control", fault or {"mode": "ok"})
    created = partners.topup(secret, partners.order(phone=phone)).topup
    final = partners.final(secret, created.id)
    assert final, "not final in time"
    assert partners.pb.TopupStatus.Name(final.status) == f"TOPUP_STATUS_{final_status}", final
    assert charges(simulator, created.id) == charged
    if charged:
        assert final.provider_reference.startswith("sim-")


def test_a_provider_that_always_refuses_fails_the_topup_after_its_attempts(provider_world):
    partners, secret, simulator = provider_world
    call(simulator.url, "/control", {"mode": "ok"})
    created = partners.topup(secret, partners.order(phone="+4915112340503")).topup
    final = partners.final(secret, created.id)
    assert final.status == partners.pb.TOPUP_STATUS_FAILED and final.attempts == 5
    assert "503" in final.failure_reason and charges(simulator, created.id) == 0


def test_a_worker_killed_mid_call_leaves_the_topup_charged_once(stubs):
    """SIGKILL while the provider is still charging (it charges after its delay whatever
    happened to the caller); the restarted instance asks the status after the lease and does
    not charge again."""
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    simulator = ProviderSimulator().start()
    try:
        with private_services("redis") as (urls, _):
            env = dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], TOPUP_PROVIDER="http", TOPUP_PROVIDER_URL=simulator.url,
                       TOPUP_PROVIDER_TIMEOUT_MS="1000", QUEUE_LEASE_MS="1000", TOPUP_SWEEP_AFTER_MS="500")
            proc, port, log = start_tally(env=env)
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    partners = Partners.on(channel)
                    _, _, secret = partners.key()
                    call(simulator.url, "/control", {"mode": "slow", "delay_ms": 600})
                    created = partners.topup(secret, partners.order()).topup
                    assert eventually(lambda: partners.get(secret, created.id).status == topup_pb2.TOPUP_STATUS_PROCESSING, timeout=10)
                    # PROCESSING is set when the job is claimed, before the request is sent: kill only
                    # once the provider holds the request, or the kill may come before any charge.
                    assert eventually(lambda: call(simulator.url, "/stats")["charge_requests"] == 1, timeout=10)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            assert eventually(lambda: charges(simulator, created.id) == 1, timeout=5), "the provider never charged"
            call(simulator.url, "/control", {"mode": "ok"})
            proc, port, log = start_tally(env=env)
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    partners.stub = topup_pb2_grpc.TopupServiceStub(channel)
                    final = partners.final(secret, created.id, timeout=40)
                    assert final and final.status == topup_pb2.TOPUP_STATUS_SUCCEEDED, final
                    assert final.attempts == 2, "the second attempt should have asked the status"
                    assert charges(simulator, created.id) == 1, "charged twice"
            finally:
                assert stop_tally(proc) == 0, open(log).read()
    finally:
        simulator.stop()
