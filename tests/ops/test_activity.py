"""The activity log through the real app: logins and refusals recorded where they happen, listed for admins
on /admin/activity (filters, reference search), capped and expiring in the store (memory and real Redis)."""

from __future__ import annotations

import html
import re

import pytest

from broker.errors import StoreUnavailable
from broker.ops.activity import ACTIVITY_KEY
from broker.store.memory import MemoryStore
from broker.store.redis import RedisStore
from tests.harness import Harness

TOKEN = "bootstrap-secret"  # noqa: S105 (a test value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sign_in_admin(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", TOKEN)
    client = harness.client
    client.environ_base["wsgi.url_scheme"] = "https"  # admin cookies are Secure outside the demo
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]
    assert client.post("/admin/login/token", data={"csrf": csrf, "token": TOKEN}).status_code == 303


def rows(page_text: str) -> list[str]:
    """The activity table's entries, as text."""
    found = re.findall(r'<tr class="entry [a-z_]+">(.*?)</tr>', page_text, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in found]


def log_in(harness: Harness, portal: str = "academy", **changes) -> tuple[int, str]:
    pending = harness.login(portal)
    reply = harness.post(harness.valid_response(pending, **changes), pending.relay_state)
    return reply.status_code, reply.get_data(as_text=True)


def reference_on(page_text: str) -> str:
    return re.search(r'class="ref">([0-9a-f]+)<', page_text)[1]


@pytest.fixture(params=["memory", "redis"])
def harness(request, keys):
    overrides = {"portals__sales__required_groups": ["Finance"]}
    if request.param == "memory":
        return Harness(keys, config_overrides=overrides)
    store = RedisStore.from_url(
        request.getfixturevalue("redis_url"), namespace=f"activity:{request.node.name}:"
    )
    return Harness(keys, store=store, config_overrides=overrides)


def test_login_and_refusals_are_listed_newest_first_with_check_reason_and_reference(harness, monkeypatch):
    assert log_in(harness)[0] == 200
    status, refused_page = log_in(harness, audience="https://someone-else.example")
    assert status == 400
    audience_ref = reference_on(refused_page)
    status, no_access_page = log_in(harness, "sales")
    assert status == 403
    no_access_ref = reference_on(no_access_page)

    sign_in_admin(harness, monkeypatch)
    listing = harness.client.get("/admin/activity/")
    assert listing.status_code == 200
    assert listing.headers["Cache-Control"] == "no-store"
    newest, middle, oldest = rows(listing.get_data(as_text=True))
    # a refusal after the identity was known names the user and the precise reason
    assert "alex@contoso.example" in newest and "entra → sales" in newest
    assert "no_access" in newest and "required groups ['Finance']" in newest and no_access_ref in newest
    # a refusal of the response itself: the check that failed and the reference the user saw
    assert "audience" in middle and audience_ref in middle and "Refused" in middle
    assert "alex@contoso.example" not in middle  # the identity of a refused response is not trusted
    assert "Signed in" in oldest and "alex@contoso.example" in oldest and "entra → academy" in oldest


def test_a_reference_from_an_error_page_opens_that_logins_record(harness, monkeypatch):
    _, refused_page = log_in(harness, audience="https://someone-else.example")
    reference = reference_on(refused_page)
    sign_in_admin(harness, monkeypatch)
    found = harness.client.get("/admin/activity/", query_string={"reference": f" {reference} "})
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/admin/activity/{reference}")
    record = harness.client.get(f"/admin/activity/{reference}").get_data(as_text=True)
    assert f'Login <span class="ref">{reference}</span>' in record
    assert "audience" in record and "Refused" in record
    missing = harness.client.get("/admin/activity/0123456789ab")
    assert missing.status_code == 404 and "among the last 200 kept" in missing.get_data(as_text=True)
    assert harness.client.get("/admin/activity/", query_string={"reference": "<script>"}).status_code == 400


def test_filters_by_user_portal_and_outcome(harness, monkeypatch):
    log_in(harness)
    log_in(harness, "sales")  # no access
    log_in(harness, audience="https://someone-else.example")
    sign_in_admin(harness, monkeypatch)

    def listed(**query) -> list[str]:
        return rows(harness.client.get("/admin/activity/", query_string=query).get_data(as_text=True))

    assert len(listed()) == 3
    assert [("Signed in" in r) for r in listed(outcome="signed_in")] == [True]
    assert len(listed(outcome="refused")) == 2
    assert len(listed(portal="sales")) == 1 and "no_access" in listed(portal="sales")[0]
    assert len(listed(user="ALEX@")) == 2  # case-insensitive; the audience refusal has no trusted user
    assert listed(user="nobody@") == []


def test_activity_pages_are_for_admins_only(keys):
    harness = Harness(keys)
    log_in(harness)
    for path in ("/admin/activity/", "/admin/activity/0123456789ab"):
        reply = harness.client.get(path)
        assert reply.status_code == 302 and reply.headers["Location"].endswith("/admin/")
        assert "alex@" not in reply.get_data(as_text=True)


def test_entries_are_deleted_after_the_retention_and_capped(keys, monkeypatch):
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    harness = Harness(
        keys, store=store, config_overrides={"activity": {"retention_hours": 1, "max_entries": 10}}
    )
    for _ in range(12):
        log_in(harness)
    kept = store.log_recent(ACTIVITY_KEY, 100, ttl=3600)
    assert len(kept) == 10
    clock.now += 3601
    sign_in_admin(harness, monkeypatch)
    assert rows(harness.client.get("/admin/activity/").get_data(as_text=True)) == []
    assert store.log_recent(ACTIVITY_KEY, 100, ttl=10**6) == []  # gone from the store, not only hidden


def test_entries_hold_who_where_and_why_but_no_assertion_or_attributes(keys):
    store = MemoryStore()
    harness = Harness(keys, store=store)
    log_in(harness)
    log_in(harness, audience="https://someone-else.example")
    raw = b"".join(store.log_recent(ACTIVITY_KEY, 10, ttl=3600))
    for secret_or_pii in (b"Morgan", b"SAMLResponse", b"Signature", b"0b6f1c84", b"c2a1e5f0"):
        assert secret_or_pii not in raw, secret_or_pii  # surname, assertion, object id, group ids


def test_recording_can_be_turned_off(keys, monkeypatch):
    store = MemoryStore()
    harness = Harness(keys, store=store, config_overrides={"activity": {"enabled": False}})
    log_in(harness)
    assert store.log_recent(ACTIVITY_KEY, 10, ttl=3600) == []
    sign_in_admin(harness, monkeypatch)
    assert "Recording is off" in harness.client.get("/admin/activity/").get_data(as_text=True)


class LogUnavailableStore(MemoryStore):
    """A store whose log write fails as Redis would when it is full or gone (the rest keeps working)."""

    def log_append(self, key, value, *, max_entries, ttl):
        raise StoreUnavailable("redis log append failed: OOM command not allowed")


def test_a_failed_log_write_does_not_change_the_users_outcome(keys):
    harness = Harness(keys, store=LogUnavailableStore())
    assert log_in(harness)[0] == 200
    status, text = log_in(harness, audience="https://someone-else.example")
    assert status == 400 and "Start again" in text


def test_login_latency_is_measured_by_outcome(keys):
    harness = Harness(keys)
    log_in(harness)
    log_in(harness, audience="https://someone-else.example")
    metrics = harness.client.get("/metrics").get_data(as_text=True)
    assert 'broker_login_seconds_count{outcome="signed_in"} 1.0' in metrics
    assert 'broker_login_seconds_count{outcome="refused"} 1.0' in metrics
