"""Learner pages never leave anyone stuck: every refusal and HTTP error has a plain title, a "Start again" step, the
support contact and a reference that is in the log; Back never traps; a remembered IdP choice can be changed."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from lxml import etree

from tests.harness import Harness, decode_redirect_request

SUPPORT = {"name": "Contoso IT help", "email": "it-help@contoso.example"}


def two_idps(keys) -> dict:
    return {
    "upstreams__okta": {"preset": "okta", "entity_id": "https://okta.example/", "sso_url": "https://okta.example/sso",
                        "certificates": [keys.path("idp", "crt")], "email_domains": ["fabrikam.example"]},
    "upstreams__entra__email_domains": ["contoso.example"],
    "portals__academy__upstreams": ["entra", "okta"],
    "portals__academy__upstream": None,
    }  # fmt: skip


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys, config_overrides={"learner_pages__support": SUPPORT})


def reference_of(body: str) -> str:
    found = re.search(r'class="ref">([0-9a-f]{12})<', body)
    assert found, "the page shows a reference id"
    return found[1]


def assert_next_step(body: str, start: str) -> None:
    assert f'<a class="button" href="{start}">Start again</a>' in body
    assert '<a href="mailto:it-help@contoso.example">Contact Contoso IT help</a>' in body


def logged(caplog, reference: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if reference in r.getMessage()]


def test_no_access_page_says_so_and_offers_the_portal_bookmark_and_support(keys, caplog):
    harness = Harness(keys, config_overrides={"learner_pages__support": SUPPORT,
                                              "portals__academy__required_groups": ["Nobody"]})  # fmt: skip
    pending = harness.login()
    reply = harness.post(harness.valid_response(pending), pending.relay_state)
    body = reply.get_data(as_text=True)
    assert reply.status_code == 403
    assert "<h1>You don&#39;t have access to this portal yet</h1>" in body
    assert "Sign-in failed" not in body
    assert_next_step(body, "/login/academy")
    assert any("check=no_access" in line for line in logged(caplog, reference_of(body)))


def test_used_sign_in_link_has_a_plain_title_and_a_logged_reference(harness, caplog):
    pending = harness.login()
    response = harness.valid_response(pending)
    assert harness.post(response, pending.relay_state).status_code == 200
    replayed = harness.post(response, pending.relay_state)  # the same response again: a replay, refused
    body = replayed.get_data(as_text=True)
    assert replayed.status_code == 400 and "This sign-in link has expired" in body
    assert_next_step(body, "/login/academy")
    assert any("check=expired" in line for line in logged(caplog, reference_of(body)))


@pytest.mark.parametrize("status, path, method, title", [
    (404, "/no/such/page", "get", "We can&#39;t find this page"),
    (405, "/login/academy", "post", "This page can&#39;t be opened this way"),
    (400, "/login/academy?idp=nonesuch", "get", "This request could not be read"),
])  # fmt: skip
def test_http_errors_are_our_own_pages_without_framework_wording(
    harness, caplog, status, path, method, title
):
    reply = getattr(harness.client, method)(path)
    body = reply.get_data(as_text=True)
    assert reply.status_code == status and f"<h1>{title}</h1>" in body
    for werkzeug in ("Not Found", "Bad Request", "Method Not Allowed", "If you entered the URL manually"):
        assert werkzeug not in body
    assert "Start again" in body
    assert logged(caplog, reference_of(body))


def test_too_large_and_unexpected_errors_have_next_steps(harness, caplog):
    reply = harness.client.post(
        "/saml/acs", data={"SAMLResponse": "A" * (harness.app.config["MAX_CONTENT_LENGTH"])}
    )
    body = reply.get_data(as_text=True)
    assert reply.status_code == 413 and "The sign-in response was too large" in body
    assert_next_step(body, "/login")
    assert logged(caplog, reference_of(body))


def test_opening_the_acs_directly_explains_how_to_sign_in(harness):
    reply = harness.client.get("/saml/acs")
    body = reply.get_data(as_text=True)
    assert reply.status_code == 405 and reply.headers["Allow"] == "POST"
    assert "Sign in from your learning portal" in body and "Method Not Allowed" not in body
    assert '<a class="button" href="/login">Start again</a>' in body


def test_rate_limited_page_logs_its_reference(keys, caplog):
    harness = Harness(
        keys, config_overrides={"rate_limits__login_per_minute": 1, "learner_pages__support": SUPPORT}
    )
    harness.client.get("/login/academy")
    reply = harness.client.get("/login/academy")
    body = reply.get_data(as_text=True)
    assert reply.status_code == 429 and "Too many sign-in attempts" in body
    assert_next_step(body, "/login/academy")
    assert any("check=rate_limit" in line for line in logged(caplog, reference_of(body)))


def test_a_portals_own_support_contact_wins(keys):
    harness = Harness(keys, config_overrides={
        "learner_pages__support": SUPPORT,
        "portals__academy__support": {"name": "Academy desk", "url": "https://help.contoso.example/academy"},
    })  # fmt: skip
    body = harness.client.get("/login/academy?target=//evil").get_data(as_text=True)
    assert '<a href="https://help.contoso.example/academy">Contact Academy desk</a>' in body


def test_idp_choose_forgets_the_remembered_sign_in_option(keys):
    harness = Harness(keys, config_overrides=two_idps(keys))
    assert harness.client.get("/login/academy?idp=entra").status_code == 302  # remembered
    assert harness.client.get("/login/academy").status_code == 302  # straight to the remembered IdP
    page = harness.client.get("/login/academy?idp=choose")
    assert page.status_code == 200 and "Choose how you sign in" in page.get_data(as_text=True)
    assert "broker_idp=;" in page.headers["Set-Cookie"]  # forgotten
    assert harness.client.get("/login/academy").status_code == 200  # asked again


def test_error_pages_offer_a_different_sign_in_option_where_there_is_one(keys):
    harness = Harness(keys, config_overrides=two_idps(keys))
    body = harness.client.get("/login/academy?idp=entra&target=//evil").get_data(as_text=True)
    assert '<a href="/login/academy?idp=choose">Use a different sign-in option</a>' in body


def test_coming_back_with_a_new_response_for_a_used_login_starts_it_again(harness):
    pending = harness.login(target="/courses/1")
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200
    # Back from the portal to the IdP's page, sign in again: a new response for the same (used) request
    again = harness.post(harness.valid_response(pending), pending.relay_state)
    assert again.status_code == 303
    assert again.headers["Location"] == "/login/academy?idp=entra&target=%2Fcourses%2F1"
    assert harness.client.get(again.headers["Location"]).status_code == 302  # a fresh login at the IdP


def test_another_browser_does_not_get_a_fresh_start(keys, harness):
    pending = harness.login()
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200
    other = Harness(keys)
    other.app, other.client = (
        harness.app,
        harness.app.test_client(),
    )  # same broker, a browser without the cookie
    reply = other.post(harness.valid_response(pending), pending.relay_state)
    assert reply.status_code in (400, 403)


def test_picker_answers_with_303_and_back_starts_afresh(keys, caplog):
    caplog.set_level(logging.INFO)
    harness = Harness(keys, config_overrides={"routing__rules": [{"portals": ["academy", "sales"]}]})
    reply = harness.client.get("/login")
    relay = re.search(r"RelayState=([^&]+)", reply.headers["Location"])
    assert relay
    params = parse_qs(urlsplit(reply.headers["Location"]).query)
    request_id = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0])).get("ID")
    spec = harness.spec(None, in_response_to=request_id)
    picker = harness.post(harness.encode(harness.document(spec)), unquote(relay[1]))
    body = picker.get_data(as_text=True)
    assert "Choose a learning portal" in body and "You are signed in as alex@contoso.example." in body
    token = re.search(r'name="token" value="([^"]+)"', body)[1]
    chosen = harness.client.post("/login/choose", data={"token": token, "portal": "sales"})
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/login/continue/")
    landed = harness.client.get(chosen.headers["Location"])
    assert landed.status_code == 200 and 'name="SAMLResponse"' in landed.get_data(as_text=True)
    back = harness.client.get(chosen.headers["Location"])  # Back or reload: used once, so a fresh start
    assert back.status_code == 303 and back.headers["Location"] == "/login"


def test_buttons_inherit_the_font_and_keep_an_edge_in_forced_colours(harness):
    body = harness.client.get("/no/such/page").get_data(as_text=True)
    assert "font: inherit" in body
    assert "@media (forced-colors: active)" in body and "border: 2px solid ButtonText" in body
    assert "@media (max-width: 40rem)" in body  # phones: the card keeps a margin


def test_an_unexpected_error_is_our_500_page_with_a_logged_reference(harness, caplog):
    def broken():
        raise RuntimeError("a bug")

    harness.app.add_url_rule("/broken-for-this-test", view_func=broken)
    reply = harness.client.get("/broken-for-this-test", headers={"Accept-Language": "ja"})
    body = reply.get_data(as_text=True)
    assert reply.status_code == 500 and "こちら側で問題が発生しました" in body and "a bug" not in body
    assert "最初からやり直す" in body
    assert any("unexpected error" in line for line in logged(caplog, reference_of(body)))
