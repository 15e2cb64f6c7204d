"""Login CSRF: an attacker starts a login in their own browser, signs in at the IdP as themselves, and makes the
victim's browser POST that response to the ACS. The pending login is bound to the starting browser, so the
victim's browser is refused, and the attacker's pending login is not used up by the attempt."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.saml.authn_request import decode_redirect_request
from broker.web.binding import BROWSER_COOKIE
from tests.harness import Harness


def victims_browser(harness: Harness):
    client = harness.app.test_client()
    assert client.get_cookie(BROWSER_COOKIE) is None
    return client


def test_response_posted_from_another_browser_is_refused(keys, caplog):
    harness = Harness(keys)
    pending = harness.login()  # in the attacker's browser
    cookie = harness.client.get_cookie(BROWSER_COOKIE)
    assert cookie is not None and cookie.http_only and cookie.secure and cookie.same_site == "None"
    response = harness.valid_response(pending)
    with caplog.at_level(logging.INFO):
        refused = victims_browser(harness).post(
            "/saml/acs", data={"SAMLResponse": response, "RelayState": pending.relay_state}
        )
    assert refused.status_code == 403
    assert "started in another browser" in refused.get_data(as_text=True)
    assert 'name="SAMLResponse"' not in refused.get_data(as_text=True)
    assert any(getattr(r, "audit", {}).get("reason") == "browser" for r in caplog.records)
    # the browser that started it can still finish (nothing was consumed)
    assert harness.post(response, pending.relay_state).status_code == 200


def test_a_different_binding_cookie_is_refused(keys):
    harness = Harness(keys)
    pending = harness.login()
    other = victims_browser(harness)
    other.get("/login/academy")  # the victim has a binding cookie of their own
    reply = other.post("/saml/acs", data={"SAMLResponse": harness.valid_response(pending),
                                          "RelayState": pending.relay_state})  # fmt: skip
    assert reply.status_code == 403


def test_several_tabs_in_one_browser_share_the_binding(keys):
    harness = Harness(keys)
    first, second = harness.login(), harness.login("sales")
    assert harness.post(harness.valid_response(second), second.relay_state).status_code == 200
    assert harness.post(harness.valid_response(first), first.relay_state).status_code == 200


@pytest.mark.parametrize("path", ["/admin/login?idp=entra", "/admin/test/academy?idp=entra"])
def test_admin_and_tester_logins_are_bound_too(keys, monkeypatch, path):
    import re

    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    harness = Harness(keys, config_overrides={"admin": {"groups": ["x"], "upstreams": ["entra"]}})
    client = harness.client
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]
    client.post("/admin/login/token", data={"csrf": csrf, "token": "bootstrap-secret"})
    started = client.get(path)
    assert started.status_code == 302
    params = parse_qs(urlsplit(started.headers["Location"]).query)
    request_id = re.search(rb'ID="([^"]+)"', decode_redirect_request(params["SAMLRequest"][0]))[1].decode()
    response = harness.encode(harness.document(harness.spec(None, in_response_to=request_id)))
    refused = victims_browser(harness).post(
        "/saml/acs", data={"SAMLResponse": response, "RelayState": params["RelayState"][0]}
    )
    assert refused.status_code == 403 and "started in another browser" in refused.get_data(as_text=True)


def test_a_portal_chosen_by_host_name_continues_on_the_brokers_host(keys):
    harness = Harness(keys, config_overrides={"portals__sales__hosts": ["learn-sales.example.com"]})
    reply = harness.client.get("/login?target=/x", headers={"Host": "learn-sales.example.com"})
    assert reply.status_code == 302
    assert reply.headers["Location"] == "https://broker.test/login/sales?target=%2Fx"
    assert harness.client.get_cookie(BROWSER_COOKIE, domain="learn-sales.example.com") is None
