"""Attacks on the admin area, reproduced through the app and refused: spoofed admin groups, store filling
through /admin/login, token guessing, sessions that outlive logout, and non-ASCII secrets."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from broker.demo.idp_response import DemoUser
from broker.saml.authn_request import decode_redirect_request
from broker.store.memory import MemoryStore
from tests.harness import IDP_SSO, TENANT, Harness, Pending

ADMINS_ID = "7d3e9a41-5c2b-4f8e-a1d6-3b4c5d6e7f80"  # the real "LMS Admins" group
LOOKALIKE_ID = "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d"  # a Microsoft 365 group a user created, same name
ADMIN_USER = DemoUser(
    "dana@contoso.example", "Dana", "Admin", "3f2e1d0c-9b8a-4766-8554-433221100fed", [ADMINS_ID]
)
SPOOFER = DemoUser(
    "mallory@contoso.example", "Mallory", "X", "1f2e3d4c-5b6a-4798-8a6b-5c4d3e2f1a0b", [LOOKALIKE_ID]
)


def admin_harness(keys, groups=(ADMINS_ID,), upstreams=("entra",), store=None, **overrides) -> Harness:
    config = {
        "admin": {"groups": list(groups), "upstreams": list(upstreams)},
        # both ids are named "LMS Admins" (as Graph would name them); the map stands in for Graph's answer
        "upstreams__entra__groups": {"static_map": {ADMINS_ID: "LMS Admins", LOOKALIKE_ID: "LMS Admins"}},
        **overrides,
    }
    harness = Harness(keys, store=store, config_overrides=config)
    harness.client.environ_base["wsgi.url_scheme"] = "https"  # admin cookies are Secure outside the demo
    return harness


def start_admin_login(harness: Harness, idp: str = "entra") -> Pending:
    reply = harness.client.get("/admin/login", query_string={"idp": idp})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    params = parse_qs(urlsplit(reply.headers["Location"]).query)
    request = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0]))
    return Pending(params["RelayState"][0], request.get("ID"), reply.headers["Location"], request)


def sign_in_as(harness: Harness, user: DemoUser):
    pending = start_admin_login(harness)
    spec = harness.spec(pending, user=user, name_id=user.email, attributes=user.entra_attributes(TENANT))
    return harness.post(harness.encode(harness.document(spec)), pending.relay_state)


def csrf(harness: Harness) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', harness.client.get("/admin/").get_data(as_text=True))[1]


def is_admin(harness: Harness) -> bool:
    return "<title>Broker administration</title>" in harness.client.get("/admin/").get_data(as_text=True)


def test_admin_sign_in_through_an_idp_is_off_until_admin_upstreams_names_one(keys):
    harness = admin_harness(keys, upstreams=())
    assert harness.client.get("/admin/login", query_string={"idp": "entra"}).status_code == 400
    assert "?idp=entra" not in harness.client.get("/admin/").get_data(as_text=True)


def test_okta_group_named_like_the_admin_group_gets_no_admin_sign_in(keys):
    okta = {"preset": "okta", "entity_id": "http://www.okta.com/exk1", "sso_url": IDP_SSO,
            "certificates": [keys.path("okta", "crt")]}  # fmt: skip
    harness = admin_harness(keys, groups=["LMS Admins"], upstreams__okta=okta)
    assert harness.client.get("/admin/login", query_string={"idp": "okta"}).status_code == 400


def test_entra_group_copying_the_admin_groups_name_is_refused_when_named_by_object_id(keys):
    by_name = admin_harness(keys, groups=["LMS Admins"])
    assert sign_in_as(by_name, SPOOFER).status_code == 303  # the attack, with a name-based rule
    assert is_admin(by_name)
    by_id = admin_harness(keys)
    refused = sign_in_as(by_id, SPOOFER)
    assert refused.status_code == 403 and "not allowed to administer" in refused.get_data(as_text=True)
    assert not is_admin(by_id)
    assert sign_in_as(by_id, ADMIN_USER).status_code == 303
    assert is_admin(by_id)


def test_logout_ends_the_session_on_the_server(keys):
    harness = admin_harness(keys)
    sign_in_as(harness, ADMIN_USER)
    stolen = harness.client.get_cookie("broker_session").value
    assert harness.client.post("/admin/logout", data={"csrf": csrf(harness)}).status_code == 303
    replay = harness.app.test_client()
    replay.environ_base["wsgi.url_scheme"] = "https"
    replay.set_cookie("broker_session", stolen)
    assert "<title>Broker administration</title>" not in replay.get("/admin/").get_data(as_text=True)


def test_sign_in_rotates_the_session(keys):
    harness = admin_harness(keys)
    sign_in_as(harness, ADMIN_USER)
    first = harness.client.get_cookie("broker_session").value
    sign_in_as(harness, ADMIN_USER)
    second = harness.client.get_cookie("broker_session").value
    assert first != second
    old = harness.app.test_client()
    old.environ_base["wsgi.url_scheme"] = "https"
    old.set_cookie("broker_session", first)
    assert "<title>Broker administration</title>" not in old.get("/admin/").get_data(as_text=True)
    assert is_admin(harness)


def test_non_ascii_secrets_are_refused_not_a_500(keys, monkeypatch):
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    monkeypatch.setenv("BROKER_METRICS_TOKEN", "metrics-secret")
    harness = admin_harness(keys)
    assert harness.client.post("/admin/logout", data={"csrf": "é€"}).status_code == 403
    token = harness.client.post("/admin/login/token", data={"csrf": csrf(harness), "token": "jeton-é"})
    assert token.status_code == 403
    metrics = harness.client.get("/metrics", headers={"Authorization": "Bearer ü".encode().decode("latin-1")})
    assert metrics.status_code == 403


def test_bootstrap_token_attempts_are_throttled_per_client_and_in_total(keys, monkeypatch, caplog):
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    harness = admin_harness(keys, admin__token_attempts_per_client=3, admin__token_attempts_total=5)
    form = {"csrf": csrf(harness), "token": "guess"}
    with caplog.at_level(logging.INFO):
        codes = [harness.client.post("/admin/login/token", data=form).status_code for _ in range(3)]
        blocked = harness.client.post("/admin/login/token", data={**form, "token": "bootstrap-secret"})
    assert codes == [403, 403, 403]
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]
    assert not is_admin(harness)  # even the right token waits out the window
    events = [r.audit["event"] for r in caplog.records if hasattr(r, "audit")]
    assert events.count("admin.token_refused") == 3 and "admin.token_throttled" in events
    other = {"REMOTE_ADDR": "198.51.100.9"}  # another client: its own 3, but the total (5) runs out first
    other_codes = [harness.client.post("/admin/login/token", data=form, environ_base=other).status_code
                   for _ in range(2)]  # fmt: skip
    assert other_codes == [403, 429]


def test_admin_login_is_rate_limited_like_login(keys):
    harness = admin_harness(keys, rate_limits={"login_per_minute": 3, "acs_per_minute": 0})
    codes = [harness.client.get("/admin/login", query_string={"idp": "entra"}).status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]


def test_a_full_store_refuses_new_pending_logins_with_a_503(keys):
    harness = admin_harness(keys, store=MemoryStore(max_keys=20))
    codes = [harness.client.get("/admin/login", query_string={"idp": "entra"}).status_code for _ in range(30)]
    assert 500 not in codes and codes[0] == 302 and codes[-1] == 503
    login = harness.client.get("/login/academy")
    assert login.status_code == 503 and login.headers["Retry-After"]
    assert "briefly unavailable" in login.get_data(as_text=True)


# ---- the flow tester's traces --------------------------------------------------------------------------------


def run_a_test(harness: Harness) -> str:
    """The signed-in admin tests academy's login with Alex's account; returns the trace's id."""
    reply = harness.client.get("/admin/test/academy", query_string={"idp": "entra"})
    assert reply.status_code == 302, reply.get_data(as_text=True)[:300]
    params = parse_qs(urlsplit(reply.headers["Location"]).query)
    request = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0]))
    pending = Pending(params["RelayState"][0], request.get("ID"), reply.headers["Location"], request)
    landed = harness.post(harness.valid_response(pending), pending.relay_state)
    assert landed.status_code == 303 and "/admin/trace/" in landed.headers["Location"]
    return landed.headers["Location"].rsplit("/", 1)[1]


def other_admin(harness: Harness, monkeypatch):
    """A second administrator, in their own browser, signed in with the bootstrap token."""
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    client = harness.app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]
    assert (
        client.post("/admin/login/token", data={"csrf": token, "token": "bootstrap-secret"}).status_code
        == 303
    )
    return client, re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]


def test_a_trace_belongs_to_the_admin_who_ran_it_and_is_never_cached(keys, monkeypatch):
    harness = admin_harness(keys)
    sign_in_as(harness, ADMIN_USER)
    report_id = run_a_test(harness)
    own = harness.client.get(f"/admin/trace/{report_id}")
    assert own.status_code == 200 and "alex@contoso.example" in own.get_data(as_text=True)
    assert own.headers["Cache-Control"] == "no-store"
    assert harness.client.get("/admin/").headers["Cache-Control"] == "no-store"
    client, token = other_admin(harness, monkeypatch)
    theirs = client.get(f"/admin/trace/{report_id}")
    assert theirs.status_code == 404 and "alex@contoso.example" not in theirs.get_data(as_text=True)
    assert client.post(f"/admin/trace/{report_id}/continue", data={"csrf": token}).status_code == 400
    continued = harness.client.post(f"/admin/trace/{report_id}/continue", data={"csrf": csrf(harness)})
    assert continued.status_code == 200 and 'name="SAMLResponse"' in continued.get_data(as_text=True)


def test_a_trace_expires_after_ten_minutes(keys):
    now = [1000.0]
    harness = admin_harness(keys, store=MemoryStore(clock=lambda: now[0]))
    sign_in_as(harness, ADMIN_USER)
    report_id = run_a_test(harness)
    now[0] += 9 * 60
    assert harness.client.get(f"/admin/trace/{report_id}").status_code == 200
    now[0] += 61
    assert harness.client.get(f"/admin/trace/{report_id}").status_code == 404
    assert is_admin(harness)  # the session lasts longer than its traces
