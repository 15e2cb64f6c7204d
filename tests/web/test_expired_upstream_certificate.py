"""An upstream whose metadata certificate has expired: logins go through (metadata is the trust anchor), loudly:
one WARNING per upstream every few minutes, a counter, a red row on the admin page. With
enforce_certificate_expiry they are refused, and the reason names the setting."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from lxml import html

from tests.cli.conftest import make_certificate
from tests.harness import Harness
from tests.web.test_operations import metric

NOW = dt.datetime.now(dt.UTC)
ADMIN_TOKEN = "expired-cert-admin-token"  # noqa: S105 (a test value)


@pytest.fixture
def expired_idp_cert(keys, tmp_path) -> str:
    """The test IdP's real key, in a certificate that ended three days ago (as listed in stale metadata)."""
    path = make_certificate(keys.idp, tmp_path / "idp-expired.crt", not_before=NOW - dt.timedelta(days=400),
                            not_after=NOW - dt.timedelta(days=3))  # fmt: skip
    return str(path)


def harness_with(keys, cert: str, **more: object) -> Harness:
    return Harness(keys, config_overrides={"upstreams__entra__certificates": [cert], **more})


def test_logins_with_an_expired_metadata_certificate_are_accepted_with_one_warning_and_a_count(
    keys, expired_idp_cert, caplog
):
    harness = harness_with(keys, expired_idp_cert)
    caplog.set_level(logging.WARNING, logger="broker.certificates")

    for _ in range(3):
        pending = harness.login()
        assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200

    warnings = [r for r in caplog.records if r.name == "broker.certificates"]
    assert len(warnings) == 1  # rate-limited through the store: one line, not one per login
    message = warnings[0].getMessage()
    assert "EXPIRED signing certificate of upstream entra" in message
    assert "upstreams.entra.enforce_certificate_expiry: true" in message
    metrics = harness.client.get("/metrics").get_data(as_text=True)
    assert metric(metrics, "broker_upstream_expired_certificate_logins_total", upstream="entra") == 3


def test_enforce_certificate_expiry_refuses_and_names_the_setting(keys, expired_idp_cert, caplog):
    harness = harness_with(keys, expired_idp_cert, upstreams__entra__enforce_certificate_expiry=True)
    caplog.set_level(logging.WARNING)

    pending = harness.login()
    reply = harness.post(harness.valid_response(pending), pending.relay_state)

    assert reply.status_code == 400
    refusal = next(r for r in caplog.records if "SAML response rejected" in r.getMessage())
    assert "check=signature" in refusal.getMessage()
    assert "upstreams.entra.enforce_certificate_expiry is true" in refusal.getMessage()
    assert "SignatureConfiguration" not in refusal.getMessage()


def test_sha1_from_an_upstream_is_refused_naming_allow_sha1_and_no_library_advice(keys, caplog):
    harness = Harness(keys)
    caplog.set_level(logging.WARNING)

    pending = harness.login()
    reply = harness.post(harness.valid_response(pending, algorithm="rsa-sha1"), pending.relay_state)

    assert reply.status_code >= 400
    logged = next(r for r in caplog.records if "SAML response rejected" in r.getMessage()).getMessage()
    assert "upstreams.entra.allow_sha1" in logged and "SHA-1" in logged
    body = reply.get_data(as_text=True)
    assert "allow_sha1" not in body and "SignatureConfiguration" not in body  # the user sees a short page


def admin_index(harness: Harness, monkeypatch) -> html.HtmlElement:
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
    login_page = harness.client.get("/admin/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', login_page)[1]
    signed_in = harness.client.post("/admin/login/token", data={"csrf": csrf, "token": ADMIN_TOKEN})
    assert signed_in.status_code in (302, 303)
    return html.fromstring(harness.client.get("/admin/").data)


def test_admin_page_shows_the_upstream_in_red_with_what_to_do(keys, expired_idp_cert, monkeypatch):
    stale = admin_index(harness_with(keys, expired_idp_cert), monkeypatch)
    fresh = admin_index(Harness(keys), monkeypatch)

    rows = stale.xpath('//table[@id="upstreams"]//tr[@class="expired"]')
    assert len(rows) == 1
    text = rows[0].text_content()
    assert "every signing certificate has expired" in text and "still accepted" in text
    assert "enforce_certificate_expiry" in text
    assert fresh.xpath('//table[@id="upstreams"]//tr[@class="expired"]') == []
