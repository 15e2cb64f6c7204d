"""Rate limits per client IP on /login and /saml/acs, shared by replicas through the store."""

from __future__ import annotations

import pytest

from broker.store.connect import open_store
from tests.harness import Harness


def test_login_is_limited_per_client_ip(keys):
    harness = Harness(keys, config_overrides={"rate_limits": {"login_per_minute": 3, "acs_per_minute": 0}})
    replies = [
        harness.client.get("/login/academy", environ_base={"REMOTE_ADDR": "198.51.100.7"}) for _ in range(4)
    ]
    assert [r.status_code for r in replies] == [302, 302, 302, 429]
    assert replies[-1].headers["Retry-After"]
    assert "Too many sign-in attempts" in replies[-1].get_data(as_text=True)
    other = harness.client.get("/login/academy", environ_base={"REMOTE_ADDR": "198.51.100.8"})
    assert other.status_code == 302  # another client is not affected


def test_acs_is_limited(keys):
    harness = Harness(keys, config_overrides={"rate_limits": {"login_per_minute": 0, "acs_per_minute": 2}})
    replies = [harness.post("garbage", "x") for _ in range(3)]
    assert [r.status_code for r in replies] == [400, 400, 429]


def test_forwarded_for_is_used_only_behind_configured_proxies(keys):
    harness = Harness(keys, config_overrides={"rate_limits": {"login_per_minute": 1, "trusted_proxies": 1}})
    first = harness.client.get("/login/academy", headers={"X-Forwarded-For": "203.0.113.1"})
    second = harness.client.get("/login/academy", headers={"X-Forwarded-For": "203.0.113.2"})
    assert (first.status_code, second.status_code) == (302, 302)  # two clients behind one proxy


@pytest.mark.redis
def test_replicas_share_the_limit_through_redis(keys, redis_url):
    overrides = {"rate_limits": {"login_per_minute": 2}}
    one = Harness(keys, store=open_store(redis_url, namespace="rl:"), config_overrides=overrides)
    two = Harness(keys, store=open_store(redis_url, namespace="rl:"), config_overrides=overrides)
    ip = {"REMOTE_ADDR": "192.0.2.55"}
    codes = [h.client.get("/login/academy", environ_base=ip).status_code for h in (one, two, one)]
    assert codes == [302, 302, 429]


def test_an_oversized_acs_post_is_counted_before_it_is_refused(keys):
    """The ACS's count reads the form (for the pending login's key): a body too large to parse is still counted."""
    harness = Harness(keys, config_overrides={"rate_limits": {"login_per_minute": 0, "acs_per_minute": 2}})
    huge = {"SAMLResponse": "A" * harness.app.config["MAX_CONTENT_LENGTH"], "RelayState": "r"}
    replies = [harness.client.post("/saml/acs", data=huge) for _ in range(3)]
    assert [r.status_code for r in replies] == [413, 413, 429]


def acs_outcomes(harness: Harness) -> list[int]:
    """A login, the same response again (the pending login is gone), no RelayState, an unknown RelayState."""
    pending = harness.login()
    response = harness.valid_response(pending)
    outcomes = [harness.post(response, pending.relay_state).status_code]
    outcomes.append(harness.post(response, pending.relay_state).status_code)
    outcomes.append(harness.post(harness.valid_response(harness.login()), None).status_code)
    outcomes.append(harness.post(harness.valid_response(harness.login()), "no-such-login").status_code)
    return outcomes


def test_the_acs_answers_alike_with_the_limit_on_and_off(keys):
    """Production counts ACS posts (600 a minute by default) and reads the pending login with the count; the
    tests' harness turns limits off and reads it alone. Both paths answer every case the same."""
    on = Harness(keys, config_overrides={"rate_limits": {"login_per_minute": 0, "acs_per_minute": 600}})
    off = Harness(keys)
    answered = acs_outcomes(on)
    assert answered == acs_outcomes(off)
    assert answered[0] == 200 and answered[1] != 200, answered  # signed in once, not twice
