"""What the broker sends out: escaped XML and HTML, no open redirect through targets, security headers everywhere."""

from __future__ import annotations

import base64
import html
import re

import pytest
from lxml import etree

from broker.demo.idp_response import DemoUser
from broker.saml.xml import SAML, qname
from broker.saml.xmldsig import verify_enveloped
from tests.harness import Harness
from tests.security.forge import b64, signed_document

ACADEMY = "https://academy.learnupon.com"
GIVEN_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"

TRICKY = DemoUser(
    email="o&neil@contoso.example",
    first_name="Ann <b>\"Q\"</b> & 'x' ]]>",
    last_name="O'Brien & <Sons> ]]> --",
    object_id="0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41",
    groups=["R&D <core>", '"quoted" ]]> group', "<script>alert(1)</script>"],
)
RAW_MARKUP = [b"<b>", b"</b>", b"<Sons>", b"<core>", b"<script>", b"]]>"]


def form_fields(body: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', body)}


def sign_in(harness: Harness, user: DemoUser = TRICKY, target: str | None = None):
    pending = harness.login(target=target)
    spec = harness.spec(pending, user=user)
    reply = harness.post(harness.encode(harness.document(spec)), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    return reply, reply.get_data(as_text=True)


def values(response: etree._Element, name: str) -> list[str]:
    return [
        value.text
        for attribute in response.iter(qname(SAML, "Attribute"))
        if attribute.get("Name") == name
        for value in attribute.findall(qname(SAML, "AttributeValue"))
    ]


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys, config_overrides={"portals__academy__display_name": '<script>x</script> & "Co"'})


def test_markup_in_names_and_groups_is_escaped_in_the_outgoing_assertion_and_reads_back_exactly(
    harness, keys
):
    _, body = sign_in(harness)
    xml = base64.b64decode(form_fields(body)["SAMLResponse"])
    for raw in RAW_MARKUP:
        assert raw not in xml, f"{raw!r} reached the portal unescaped"
    assert b"&lt;b&gt;" in xml and b"&amp;" in xml
    response = etree.fromstring(xml)
    assert values(response, GIVEN_NAME) == [TRICKY.first_name]
    assert values(response, SURNAME) == [TRICKY.last_name]
    assert values(response, EMAIL) == [TRICKY.email]
    assert response.findtext(f".//{qname(SAML, 'NameID')}") == TRICKY.email
    assert sorted(values(response, "groups")) == sorted(TRICKY.groups)
    # the values are inside what the portal verifies, exactly as the user's IdP sent them
    signed = verify_enveloped(response.find(qname(SAML, "Assertion")), [keys.broker.certificate]).element
    assert values(signed, SURNAME) == [TRICKY.last_name]


def test_the_auto_post_form_escapes_everything_it_shows(harness):
    _, body = sign_in(harness)
    assert "<script>x</script>" not in body
    assert body.count("&lt;script&gt;x&lt;/script&gt; &amp; &#34;Co&#34;") >= 2  # title, heading, button
    assert len(re.findall(r"<script\b", body)) == 1, "only the broker's own nonce'd auto-submit script"
    assert re.search(r'<script nonce="[^"]+">document\.forms\[0\]\.submit\(\);</script>', body)
    assert re.search(r'<form method="post" action="https://academy\.learnupon\.com/saml/consumer">', body)


def test_a_safe_target_with_ampersand_and_quotes_is_escaped_in_the_form(harness):
    target = "/courses/42?tab=notes&view='full'"
    _, body = sign_in(harness, target=target)
    assert 'value="/courses/42?tab=notes&amp;view=&#39;full&#39;"' in body
    assert form_fields(body)["RelayState"] == target


UNSAFE_TARGETS = [
    '"><script>alert(1)</script>',
    '/"><script>alert(1)</script>',
    "//evil.example/phish",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http://academy.learnupon.com.evil.example/",
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/ok\r\nLocation: https://evil.example",
    "\t//evil.example",
]


@pytest.mark.parametrize("target", UNSAFE_TARGETS)
def test_an_unsafe_target_is_refused_at_login_and_never_reflected(harness, target):
    reply = harness.client.get("/login/academy", query_string={"target": target})
    body = reply.get_data(as_text=True)
    assert reply.status_code == 400, (reply.status_code, reply.headers.get("Location"))
    assert "Location" not in reply.headers
    assert "<script>alert" not in body and "evil.example" not in body


def test_the_target_stays_with_the_broker_and_relay_state_is_an_opaque_key(harness):
    target = "/courses/42?tab=notes"
    pending = harness.login(target=target)
    assert "courses" not in pending.location
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", pending.relay_state)


# --- headers on every kind of page ----------------------------------------------------------------------------


def _acs_success(h: Harness):
    pending = h.login()
    return h.post(b64(signed_document(h, pending, "assertion")), pending.relay_state)


PAGES = {
    "login redirect": lambda h: h.client.get("/login/academy"),
    "login refused (unsafe target)": lambda h: h.client.get("/login/academy?target=//evil.example"),
    "unknown portal": lambda h: h.client.get("/login/no-such-portal"),
    "acs success": _acs_success,
    "acs error": lambda h: h.post(b64(b"not xml"), h.login().relay_state),
    "acs without a pending login": lambda h: h.post(b64(b"<x/>"), "unknown"),
    "sp metadata": lambda h: h.client.get("/saml/metadata"),
    "portal metadata xml": lambda h: h.client.get("/portals/academy/metadata?format=xml"),
    "portal setup page": lambda h: h.client.get("/portals/academy/metadata", headers={"Accept": "text/html"}),
    "healthz": lambda h: h.client.get("/healthz"),
    "not found": lambda h: h.client.get("/no/such/page"),
    "method not allowed": lambda h: h.client.get("/saml/acs"),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_type_carries_the_security_headers(harness, page):
    reply = PAGES[page](harness)
    assert reply.status_code != 500
    csp = reply.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert reply.headers.get("X-Content-Type-Options") == "nosniff"
    assert reply.headers.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin"), (
        reply.headers
    )


def test_the_auto_post_page_may_only_submit_to_the_portal(harness):
    reply = _acs_success(harness)
    csp = reply.headers["Content-Security-Policy"]
    assert f"form-action {ACADEMY}" in csp and "form-action *" not in csp
    assert reply.headers.get("Cache-Control") == "no-store"
