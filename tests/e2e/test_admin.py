"""The admin flow tester over real HTTP: sign in as admin, test a portal's login, read the trace, continue."""

from __future__ import annotations

import html
import re

import requests

from tests.demo_servers import submit_form


def admin_session(demo, email: str = "alex.morgan@contoso.example") -> requests.Session:
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/admin/login?idp=entra")
    landed = submit_form(session, submit_form(session, idp_page, email=email))
    assert landed.url == f"{demo.urls.broker}/admin/", landed.text[:300]
    return session


def test_admin_pages_need_sign_in(demo):
    page = requests.get(f"{demo.urls.broker}/admin/")
    assert "Sign in with an account in an administrator group" in page.text
    trace = requests.get(f"{demo.urls.broker}/admin/trace/whatever", allow_redirects=False)
    assert trace.status_code == 302


def test_user_outside_the_admin_groups_is_refused(demo, monkeypatch):
    # In the demo every Entra user is in "All Staff", the admin group; narrow it for this test.
    rt = demo.apps.broker.extensions["broker"]
    narrowed = rt.config.admin.model_copy(update={"groups": ["Sales Team"]})
    monkeypatch.setattr(rt, "config", rt.config.model_copy(update={"admin": narrowed}))
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/admin/login?idp=entra")
    refused = submit_form(session, submit_form(session, idp_page, email="priya.shah@contoso.example"))
    assert refused.status_code == 403
    assert "not allowed to administer" in refused.text
    # Okta users are not offered the admin sign-in at all
    assert requests.get(f"{demo.urls.broker}/admin/login?idp=okta").status_code == 400


def test_trace_shows_every_section_and_continue_reaches_the_portal(demo):
    session = admin_session(demo)
    idp_page = session.get(f"{demo.urls.broker}/admin/test/academy?idp=entra")
    trace = submit_form(session, submit_form(session, idp_page, email="sam.lee@contoso.example"))
    assert "/admin/trace/" in trace.url
    text = html.unescape(trace.text)
    assert "Every check passed" in text
    for section in ('id="checks"', 'id="claims"', 'id="routing"', 'id="provisioning"', 'id="outgoing"',
                    'id="response"', 'id="request"'):  # fmt: skip
        assert section in trace.text, section
    # Sam's GUIDs: one named by the static map, the others by Graph (or the Graph cache, warmed earlier)
    assert re.search(r"3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d → Engineering \[(graph|cache)\]", text)
    assert "→ All Staff [static]" in text
    assert "POST users" in text or "create user" in text.lower()  # the dry-run plan names the calls
    # the portal's groups (the assertion's) and the enrolments its rules plan
    assert re.search(
        r"groups \(as in the assertion\): (All Staff|Engineering|Sales EMEA)(; (All Staff|Engineering|Sales EMEA)){2}",
        text,
    )
    for planned in (
        "course 2002",
        "course 'Welcome to Contoso' (id 2001)",
        "learning path 'Sales Onboarding'",
    ):
        assert f"planned enrolment: {planned.split(' (')[0]}" in text, planned
    assert "POST enrollments course 'Welcome to Contoso' (id 2001)" in text
    assert demo.apps.learnupon_states["academy"].find_user("sam.lee@contoso.example") is None  # dry run only
    landed = submit_form(session, submit_form(session, trace))
    assert "Signed in to academy as sam.lee@contoso.example" in landed.text


def test_tampered_response_shows_the_exact_failing_check(demo):
    session = admin_session(demo)
    idp_page = session.get(f"{demo.urls.broker}/admin/test/academy?idp=entra")
    to_broker = submit_form(session, idp_page, email="priya.shah@contoso.example")
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', to_broker.text)}
    import base64

    document = base64.b64decode(fields["SAMLResponse"]).replace(b"Priya", b"Mallory")
    fields["SAMLResponse"] = base64.b64encode(document).decode()
    trace = session.post(f"{demo.urls.broker}/saml/acs", data=fields)
    assert "/admin/trace/" in trace.url
    assert "Refused — signature" in html.unescape(trace.text)
    assert 'id="continue"' not in trace.text


def test_admin_index_lists_portals_upstreams_and_the_reload_button(demo):
    session = admin_session(demo)
    index = session.get(f"{demo.urls.broker}/admin/").text
    assert "<title>Broker administration</title>" in index
    main = index.split("<main>", 1)[1]
    for part in (
        'href="/admin/test/academy?idp=okta"',
        'id="upstreams"',
        "Fabrikam partners (Okta)",
        'id="reload"',
    ):
        assert part in main, part


def test_admin_forms_need_the_csrf_token(demo):
    session = admin_session(demo)
    assert session.post(f"{demo.urls.broker}/admin/logout", data={}).status_code == 403
    index = session.get(f"{demo.urls.broker}/admin/")
    token = re.search(r'name="csrf" value="([^"]+)"', index.text)[1]
    out = session.post(f"{demo.urls.broker}/admin/logout", data={"csrf": token})
    assert "Sign in with an account" in out.text
