"""An ACS POST waits on Redis three times (issue 20): the rate-limit count with the pending login's read, the
atomic consume, and the account link. Its activity entry joins a batch written by another thread. GET /login
waits twice: the count, then the pending login and its restart record together. Counted on the client's
connections against a real Redis: each command, script or pipeline sent is one round trip."""

from __future__ import annotations

import threading

import pytest

from broker.ops import reload
from broker.store import keys as store_keys
from tests.harness import Harness
from tests.store.round_trips import CountingConnection, counted_store

pytestmark = pytest.mark.redis


def test_an_acs_post_waits_on_redis_three_times(keys, redis_url, monkeypatch):
    monkeypatch.setattr(reload, "CHECK_EVERY_SECONDS", 3600)  # the config-change check is not per request
    limits = {"rate_limits__acs_per_minute": 600}  # as deployed (the harness turns limits off)
    harness = Harness(keys, store=counted_store(redis_url, "round-trips:"), config_overrides=limits)
    for _ in range(2):  # the first login loads the scripts into Redis
        pending = harness.login()
        CountingConnection.sent.clear()
        reply = harness.post(harness.valid_response(pending), pending.relay_state)
        assert reply.status_code == 200 and b'name="SAMLResponse"' in reply.data
    on_request = [
        name for thread, name in CountingConnection.sent if thread == threading.current_thread().name
    ]
    assert on_request == ["EVALSHA", "EVALSHA", "EVALSHA"], on_request  # count+read, consume, claim


def test_without_a_rate_limit_the_pending_login_is_read_alone(keys, redis_url, monkeypatch):
    monkeypatch.setattr(reload, "CHECK_EVERY_SECONDS", 3600)
    harness = Harness(keys, store=counted_store(redis_url, "round-trips:"))  # acs_per_minute: 0
    for _ in range(2):
        pending = harness.login()
        CountingConnection.sent.clear()
        assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200
    on_request = [
        name for thread, name in CountingConnection.sent if thread == threading.current_thread().name
    ]
    assert on_request == ["GET", "EVALSHA", "EVALSHA"], on_request


def test_starting_a_login_waits_on_redis_twice(keys, redis_url, monkeypatch):
    monkeypatch.setattr(reload, "CHECK_EVERY_SECONDS", 3600)
    limits = {"rate_limits__login_per_minute": 600}
    harness = Harness(keys, store=counted_store(redis_url, "round-trips:"), config_overrides=limits)
    harness.login()  # loads the count script
    CountingConnection.sent.clear()
    pending = harness.login()
    on_request = [
        name for thread, name in CountingConnection.sent if thread == threading.current_thread().name
    ]
    assert on_request == ["EVALSHA", "SET+SET"], on_request  # the count; the pending login and its restart
    store = harness.runtime.store
    assert store.get(store_keys.pending_login(pending.relay_state))
    assert store.get(store_keys.login_restart(pending.relay_state))
