"""Top-ups over the wire with grpcio: partner keys, the per-customer limit, idempotency,
reads, WatchTopup, retries and recovery of lost jobs."""
import concurrent.futures
import os
import subprocess
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, PRODUCT_ENV, ROOT, eventually, start_tally, stop_tally
from test_durability import private_services


@pytest.fixture
def topups(stubs, channel):
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    return Partners.on(channel)


class Partners:
    """Creates customers' keys through the admin RPCs and calls TopupService with them."""

    def __init__(self, channel, admin_pb, admin, pb, stub, common):
        self.channel, self.admin_pb, self.admin, self.pb, self.stub, self.common = channel, admin_pb, admin, pb, stub, common

    @classmethod
    def on(cls, channel):
        from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
        return cls(channel, admin_pb2, admin_pb2_grpc.AdminServiceStub(channel), topup_pb2,
                   topup_pb2_grpc.TopupServiceStub(channel), common_pb2)

    def key(self, customer=None, rate=0):
        customer = customer or f"cust-{uuid.uuid4().hex[:10]}"
        created = self.admin.CreateApiKey(self.admin_pb.CreateApiKeyRequest(customer_id=customer, rate_per_min=rate),
                                          metadata=ADMIN, timeout=10)
        return customer, created.key.id, created.secret

    def order(self, key=None, phone="+4915112345678", minor=1500, currency="EUR", carrier=""):
        return self.pb.TopupRequest(idempotency_key=key or uuid.uuid4().hex, phone_number=phone,
                                    amount=self.common.Money(minor_units=minor, currency=currency), carrier=carrier)

    def topup(self, secret, request, **metadata):
        headers = (("x-api-key", secret),) + tuple(metadata.items())
        return self.stub.Topup(request, metadata=headers, timeout=10)

    def get(self, secret, topup_id):
        return self.stub.GetTopup(self.pb.GetTopupRequest(id=topup_id), metadata=(("x-api-key", secret),), timeout=10).topup

    def final(self, secret, topup_id, timeout=30):
        done = (self.pb.TOPUP_STATUS_SUCCEEDED, self.pb.TOPUP_STATUS_FAILED)
        return eventually(lambda: (t := self.get(secret, topup_id)).status in done and t, timeout=timeout)


def code_of(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def test_a_key_resolves_its_customer_and_bad_keys_are_unauthenticated(topups):
    customer, key_id, secret = topups.key()
    response = topups.topup(secret, topups.order())
    assert response.topup.customer_id == customer and not response.replayed

    assert code_of(lambda: topups.stub.Topup(topups.order(), timeout=10))[0] == grpc.StatusCode.UNAUTHENTICATED
    # One character changed: the checksum refuses it without a lookup.
    broken = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    code, details = code_of(lambda: topups.topup(broken, topups.order()))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "malformed" in details
    # Accepted as a bearer token too.
    bearer = topups.stub.Topup(topups.order(), metadata=(("authorization", f"Bearer {secret}"),), timeout=10)
    assert bearer.topup.customer_id == customer


def test_a_revoked_key_is_refused_at_once(topups):
    _, key_id, secret = topups.key()
    topups.topup(secret, topups.order())  # cached now
    topups.admin.RevokeApiKey(topups.admin_pb.RevokeApiKeyRequest(id=key_id), metadata=ADMIN, timeout=10)
    code, details = code_of(lambda: topups.topup(secret, topups.order()))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "not valid" in details


def test_rotation_keeps_both_keys_during_the_overlap_and_only_the_new_one_after(topups):
    customer, key_id, old = topups.key()
    rotated = topups.admin.RotateApiKey(topups.admin_pb.RotateApiKeyRequest(id=key_id, overlap_ms=3_600_000),
                                        metadata=ADMIN, timeout=10)
    assert rotated.new_key.customer_id == customer and rotated.old_key.expires_at_ms > 0
    assert topups.topup(old, topups.order()).topup.customer_id == customer
    assert topups.topup(rotated.secret, topups.order()).topup.customer_id == customer
    # Rotating the new key without overlap ends it at once.
    again = topups.admin.RotateApiKey(topups.admin_pb.RotateApiKeyRequest(id=rotated.new_key.id, overlap_ms=0),
                                      metadata=ADMIN, timeout=10)
    assert code_of(lambda: topups.topup(rotated.secret, topups.order()))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert topups.topup(again.secret, topups.order()).topup.customer_id == customer
    listed = topups.admin.ListApiKeys(topups.admin_pb.ListApiKeysRequest(customer_id=customer), metadata=ADMIN, timeout=10).keys
    assert len(listed) == 3 and all(old not in str(k) and k.prefix.startswith("tly_live_") for k in listed)


def test_a_customer_id_other_than_the_keys_is_permission_denied(topups):
    customer, _, secret = topups.key()
    code, _ = code_of(lambda: topups.topup(secret, topups.order(), **{"x-customer-id": "someone-else"}))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert topups.topup(secret, topups.order(), **{"x-customer-id": customer}).topup.customer_id == customer


def test_the_same_key_replays_and_other_parameters_conflict(topups):
    _, _, secret = topups.key()
    first = topups.topup(secret, topups.order(key="order-1"))
    again = topups.topup(secret, topups.order(key="order-1"))
    assert again.replayed and again.topup.id == first.topup.id
    code, details = code_of(lambda: topups.topup(secret, topups.order(key="order-1", minor=2000, phone="+4915199999999")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "amount.minor_units" in details and "phone_number" in details and "currency" not in details
    # Keys are scoped to the customer: another customer's "order-1" is a new top-up.
    _, _, other = topups.key()
    assert not topups.topup(other, topups.order(key="order-1")).replayed


def test_concurrent_retries_of_one_key_create_one_topup(topups):
    _, _, secret = topups.key()
    request = topups.order(key=f"race-{uuid.uuid4().hex}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: topups.topup(secret, request), range(12)))
    assert len({r.topup.id for r in responses}) == 1
    assert sum(not r.replayed for r in responses) == 1


@pytest.mark.parametrize("field, request_args", [
    ("idempotency_key", dict(key="")),
    ("phone_number", dict(phone="4915112345678")),
    ("phone_number", dict(phone="+0151123456")),
    ("amount.currency", dict(currency="EURO")),
    ("amount.minor_units", dict(minor=5)),
    ("amount.minor_units", dict(minor=10_000_000)),
    ("carrier", dict(carrier="no-such-carrier")),
])
def test_invalid_orders_name_the_field(topups, field, request_args):
    _, _, secret = topups.key()
    request = topups.order(**request_args)
    if "key" in request_args:
        request.idempotency_key = request_args["key"]
    code, details = code_of(lambda: topups.topup(secret, request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(field), details


def test_the_customer_limit_answers_resource_exhausted_with_retry_after(topups):
    customer, _, secret = topups.key(rate=5)
    for _ in range(5):
        topups.topup(secret, topups.order())
    with pytest.raises(grpc.RpcError) as error:
        topups.topup(secret, topups.order())
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "5 calls per minute" in error.value.details() and customer in error.value.details()
    trailers = dict(error.value.trailing_metadata())
    assert 0 < int(trailers["retry-after-ms"]) <= 60_000


def test_get_is_scoped_to_the_customer(topups):
    _, _, secret = topups.key()
    _, _, other = topups.key()
    created = topups.topup(secret, topups.order()).topup
    assert topups.get(secret, created.id).id == created.id
    assert code_of(lambda: topups.get(other, created.id))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: topups.get(secret, "tp_nope"))[0] == grpc.StatusCode.NOT_FOUND


def test_list_pages_newest_first_with_filters(topups):
    _, _, secret = topups.key()
    created = [topups.topup(secret, topups.order(phone=("+4915112340000" if i == 3 else "+4915112345678"))).topup.id
               for i in range(7)]
    headers = (("x-api-key", secret),)
    seen, cursor = [], ""
    while True:
        page = topups.stub.ListTopups(topups.pb.ListTopupsRequest(limit=3, cursor=cursor), metadata=headers, timeout=10)
        assert len(page.topups) <= 3
        seen += [t.id for t in page.topups]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == list(reversed(created))
    for topup_id in created:
        topups.final(secret, topup_id)
    failed = topups.stub.ListTopups(topups.pb.ListTopupsRequest(status=topups.pb.TOPUP_STATUS_FAILED), metadata=headers, timeout=10)
    assert [t.id for t in failed.topups] == [created[3]]
    assert "declined" in failed.topups[0].failure_reason
    future = topups.stub.ListTopups(topups.pb.ListTopupsRequest(created_from_ms=int(time.time() * 1000) + 60_000),
                                    metadata=headers, timeout=10)
    assert list(future.topups) == []
    assert code_of(lambda: topups.stub.ListTopups(topups.pb.ListTopupsRequest(cursor="garbage!"), metadata=headers,
                                                  timeout=10))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_watch_follows_a_topup_to_its_final_state(topups):
    _, _, secret = topups.key()
    for phone, final_status in (("+4915112345678", "TOPUP_STATUS_SUCCEEDED"), ("+4915112340000", "TOPUP_STATUS_FAILED")):
        created = topups.topup(secret, topups.order(phone=phone)).topup
        updates = list(topups.stub.WatchTopup(topups.pb.WatchTopupRequest(id=created.id),
                                              metadata=(("x-api-key", secret),), timeout=30))
        states = [topups.pb.TopupStatus.Name(u.topup.status) for u in updates]
        assert states[-1] == final_status and states.count(final_status) == 1, states
        assert len(states) == len(set(states)), f"a state was sent twice: {states}"


def test_an_ambiguous_charge_is_settled_by_asking_the_provider_not_by_charging_again(topups):
    # 0001: the sandbox charges, then its answer times out; its status says charged.
    _, _, secret = topups.key()
    created = topups.topup(secret, topups.order(phone="+4915112340001")).topup
    final = topups.final(secret, created.id)
    assert final.status == topups.pb.TOPUP_STATUS_SUCCEEDED
    assert final.attempts == 1 and final.provider_reference.startswith("sbx-")


def test_retryable_provider_errors_are_retried_and_then_fail(stubs):
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    # A Redis of its own: the session's server would otherwise take jobs from the shared queue
    # and retry them under its own TOPUP_MAX_ATTEMPTS.
    with private_services("redis") as (urls, _):
        check_retries(dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], TOPUP_MAX_ATTEMPTS="3", TOPUP_RETRY_BASE_MS="50",
                           TOPUP_RETRY_MAX_MS="100"))


def check_retries(env):
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    proc, port, log = start_tally(env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            partners = Partners.on(channel)
            _, _, secret = partners.key()
            # 0002: refused once, then charged; 0003: always refused.
            once = partners.topup(secret, partners.order(phone="+4915112340002")).topup
            never = partners.topup(secret, partners.order(phone="+4915112340003")).topup
            done = partners.final(secret, once.id)
            assert done and done.status == topup_pb2.TOPUP_STATUS_SUCCEEDED and done.attempts == 2
            failed = partners.final(secret, never.id)
            assert failed and failed.status == topup_pb2.TOPUP_STATUS_FAILED and failed.attempts == 3
            assert "after 3 attempts" in failed.failure_reason
    finally:
        assert stop_tally(proc) == 0, open(log).read()


def test_topups_accepted_while_redis_is_down_or_whose_jobs_were_flushed_are_processed(stubs):
    """Postgres is the truth: a top-up accepted without Redis, and one whose job FLUSHALL
    removed, both end SUCCEEDED once Redis is back (the sweeper queues them again)."""
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    with private_services("redis") as (urls, control):
        redis_cli = ["redis-cli", "-u", urls["REDIS_URL"]]
        env = dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], TOPUP_SWEEP_AFTER_MS="300",
                   TOPUP_QUEUE_CONCURRENCY="1", TOPUP_SANDBOX_LATENCY_MS="200")
        proc, port, log = start_tally(env=env)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                partners = Partners.on(channel)
                _, _, secret = partners.key()
                queued = [partners.topup(secret, partners.order()).topup.id for _ in range(6)]
                subprocess.run(redis_cli + ["FLUSHALL"], check=True, capture_output=True)
                control("stop")
                while_down = partners.topup(secret, partners.order()).topup.id
                control("start")
                for topup_id in queued + [while_down]:
                    final = partners.final(secret, topup_id, timeout=60)
                    assert final and final.status == topup_pb2.TOPUP_STATUS_SUCCEEDED, topup_id
                    assert final.attempts == 1, "charged more than once"
        finally:
            assert stop_tally(proc) == 0, open(log).read()


def test_topup_stats_count_states_and_revenue(topups):
    customer, _, secret = topups.key()
    ok = topups.topup(secret, topups.order(minor=1000)).topup.id
    declined = topups.topup(secret, topups.order(minor=2000, phone="+4915112340000")).topup.id
    topups.final(secret, ok)
    topups.final(secret, declined)
    stats = topups.admin.TopupStats(topups.admin_pb.TopupStatsRequest(customer_id=customer), metadata=ADMIN, timeout=10)
    states = {s.state: s.count for s in stats.total.states}
    assert states["SUCCEEDED"] == 1 and states["FAILED"] == 1 and states["PENDING"] == 0
    assert [(r.currency, r.minor_units, r.count) for r in stats.total.revenue] == [("EUR", 1000, 1)]
    assert stats.total.today_count == 2 and stats.provider_calls_last_hour >= 2
    assert stats.limit_mode == "redis"
    metrics = topups.admin.Metrics(topups.admin_pb.MetricsRequest(prefix="tally_topup"), metadata=ADMIN, timeout=10).metrics
    assert any(m.name == "tally_topups" and m.labels["customer"] == customer and m.labels["state"] == "SUCCEEDED"
               and m.value == 1 for m in metrics)


def test_a_revocation_reaches_every_instance_within_a_second(stubs):
    """Instance B has the key cached; revoking it on A makes B refuse it within one second
    (the cache lives 30 s: only the pub/sub announcement can do that)."""
    from tally.v1 import admin_pb2, admin_pb2_grpc, common_pb2, topup_pb2, topup_pb2_grpc
    first, first_port, first_log = start_tally(env=PRODUCT_ENV)
    second, second_port, second_log = start_tally(env=PRODUCT_ENV)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first_port}") as a, grpc.insecure_channel(f"127.0.0.1:{second_port}") as b:
            on_a = Partners.on(a)
            on_b = Partners.on(b)
            _, key_id, secret = on_a.key()
            on_b.topup(secret, on_b.order())  # B caches the key
            on_a.admin.RevokeApiKey(admin_pb2.RevokeApiKeyRequest(id=key_id), metadata=ADMIN, timeout=10)

            def refused():
                try:
                    on_b.topup(secret, on_b.order())
                    return False
                except grpc.RpcError as error:
                    return error.code() == grpc.StatusCode.UNAUTHENTICATED

            # Two seconds for a slow machine: still far from the cache's 30 s, so only the
            # announcement can make this pass.
            assert eventually(refused, timeout=2.0), "instance B still accepts the revoked key"
    finally:
        assert stop_tally(first) == 0, open(first_log).read()
        assert stop_tally(second) == 0, open(second_log).read()
