"""Attacks across upstreams and on the admin area, reproduced against the running demo, each now refused."""

from __future__ import annotations

import logging

import pytest
import requests

from broker.demo.idp_response import DemoUser
from tests.demo_servers import sign_in, submit_form

ALEX = "alex.morgan@contoso.example"


def okta_users(demo) -> list[DemoUser]:
    return demo.apps.idp.mounts["/okta"].extensions["test_idp"].users


@pytest.fixture
def partner_admin_adds_alex(demo):
    """The partner's Okta admin creates a user with Alex's (Contoso) address and signs for it."""
    users = okta_users(demo)
    users.append(DemoUser(ALEX, "Alex", "Morgan", "00u1evil0alex", ["Partners"]))
    yield
    users.pop()


def sign_in_via_okta(demo, email: str = ALEX) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{demo.urls.broker}/login/academy", params={"idp": "okta"}, timeout=10)
    return submit_form(session, submit_form(session, page, email=email))


def audit_events(caplog, event: str) -> list[dict]:
    return [r.audit for r in caplog.records if getattr(r, "audit", {}).get("event") == event]


def group_titles(demo, email: str) -> set[str]:
    state = demo.apps.learnupon_states["academy"]
    return {g["title"] for g in state.groups_of(state.find_user(email)["id"])}


def test_partner_idp_cannot_sign_in_a_contoso_address(demo, partner_admin_adds_alex, caplog):
    landed = sign_in(demo.urls, "academy", ALEX)
    assert f"Signed in to academy as {ALEX}" in landed.text
    groups_before = group_titles(demo, ALEX)
    with caplog.at_level(logging.INFO):
        refused = sign_in_via_okta(demo)
    assert refused.status_code == 403
    assert "not allowed to sign in addresses of this e-mail domain" in refused.text
    assert "quote this reference" in refused.text and "SAMLResponse" not in refused.text
    (event,) = audit_events(caplog, "trust.refused")
    assert event["check"] == "email_domain" and event["upstream"] == "okta" and event["email"] == ALEX
    assert group_titles(demo, ALEX) == groups_before  # provisioning never ran with the partner's groups
    assert "Partners" not in groups_before


def test_second_upstream_for_an_address_is_refused_unless_linking_is_allowed(
    demo, partner_admin_adds_alex, monkeypatch, caplog
):
    # Both may assert contoso.example here (listed as shared): the first upstream still owns Alex's account.
    rt = demo.apps.broker.extensions["broker"]
    okta = rt.config.upstreams["okta"].model_copy(
        update={"email_domains": ["fabrikam.example", "contoso.example"]}
    )
    academy = rt.config.portals["academy"].model_copy(update={"shared_email_domains": ["contoso.example"]})
    config = rt.config.model_copy(update={"upstreams": {**rt.config.upstreams, "okta": okta},
                                          "portals": {**rt.config.portals, "academy": academy}})  # fmt: skip
    monkeypatch.setattr(rt, "config", config)
    sign_in(demo.urls, "academy", ALEX)  # Alex's own (Entra) login comes first
    with caplog.at_level(logging.INFO):
        refused = sign_in_via_okta(demo)
    assert refused.status_code == 403
    assert "signs in to this portal through another sign-in service" in refused.text
    (event,) = audit_events(caplog, "trust.refused")
    assert event["check"] == "account_linking" and event["first_upstream"] == "entra"
    linked = academy.model_copy(update={"account_linking": "allow"})
    monkeypatch.setattr(
        rt, "config", config.model_copy(update={"portals": {**config.portals, "academy": linked}})
    )
    page = sign_in_via_okta(demo)
    assert page.status_code == 200 and 'name="SAMLResponse"' in page.text


def test_partner_user_of_its_own_domain_still_signs_in(demo):
    landed = sign_in(demo.urls, "academy", "jordan.kim@fabrikam.example", idp="okta")
    assert "Signed in to academy as jordan.kim@fabrikam.example" in landed.text


def test_an_assertion_rebuilt_from_the_trace_page_cannot_sign_in_to_the_portal(demo):
    import base64
    import html
    import re

    from tests.e2e.test_admin import admin_session

    session = admin_session(demo)
    idp_page = session.get(f"{demo.urls.broker}/admin/test/academy?idp=entra")
    trace = submit_form(session, submit_form(session, idp_page, email="sam.lee@contoso.example"))
    assert "/admin/trace/" in trace.url and trace.headers["Cache-Control"] == "no-store"
    shown = html.unescape(re.search(r'<h2 id="outgoing">.*?<pre>(.*?)</pre>', trace.text, re.S)[1])
    assert "<samlp:Response" in shown and "SignatureValue" not in shown  # an unsigned preview
    rebuilt = base64.b64encode(shown.encode()).decode()
    portal = requests.post(f"{demo.urls.learnupon}/academy/saml/consumer", data={"SAMLResponse": rebuilt})
    assert portal.status_code == 403 and "Signed in" not in portal.text
    assert demo.apps.learnupon_states["academy"].find_user("sam.lee@contoso.example") is None
