"""Routing over real HTTP through the demo: by path, by host, by rule; picker; no access; discovery between
two upstream IdPs; IdP-initiated logins; deep links."""

from __future__ import annotations

import base64
import html
import re

import pytest
import requests

from tests.demo_servers import groups_on_page, sign_in, submit_form


def through_idp(
    session: requests.Session, idp_login_page: requests.Response, email: str
) -> requests.Response:
    """Pick the user on the test IdP and let its auto-post form reach the broker's ACS."""
    return submit_form(session, submit_form(session, idp_login_page, email=email))


def links(page: requests.Response) -> dict[str, str]:
    return {html.unescape(label.strip()): html.unescape(href) for href, label in
            re.findall(r'<a class="button" href="([^"]+)">([^<]+)</a>', page.text)}  # fmt: skip


def test_two_portals_by_path(demo):
    assert "Signed in to academy" in sign_in(demo.urls, "academy", "alex.morgan@contoso.example").text
    assert "Signed in to sales" in sign_in(demo.urls, "sales", "alex.morgan@contoso.example").text


def test_portal_by_host_name(demo):
    session = requests.Session()
    # The sales portal is configured with hosts: [sales.localhost]; /login there needs no portal in the path.
    first = session.get(
        f"{demo.urls.broker}/login", headers={"Host": "sales.localhost"}, allow_redirects=False
    )
    assert first.status_code == 302
    landed = submit_form(
        session, through_idp(session, session.get(first.headers["Location"]), "sam.lee@contoso.example")
    )
    assert "Signed in to sales as sam.lee@contoso.example" in landed.text


def test_group_rule_with_one_portal_goes_straight_there(demo):
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/login?idp=entra")
    landed = submit_form(session, through_idp(session, idp_page, "priya.shah@contoso.example"))
    assert "Signed in to academy as priya.shah@contoso.example" in landed.text


def test_several_portals_show_the_picker_and_the_choice_is_honoured(demo):
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/login?idp=entra")
    picker = through_idp(session, idp_page, "alex.morgan@contoso.example")
    assert picker.status_code == 200 and "Choose a learning portal" in picker.text
    assert "Contoso Academy" in picker.text and "Sales Enablement" in picker.text
    assert "Product and pricing training" in picker.text  # descriptions from config
    token = re.search(r'name="token" value="([^"]+)"', picker.text)[1]
    chosen = session.post(f"{demo.urls.broker}/login/choose", data={"token": token, "portal": "sales"})
    landed = submit_form(session, chosen)
    assert "Signed in to sales as alex.morgan@contoso.example" in landed.text
    # The choice is used once, and only from the browser it was offered to.
    again = session.post(f"{demo.urls.broker}/login/choose", data={"token": token, "portal": "academy"})
    assert again.status_code == 400


def test_picker_token_from_another_browser_is_refused(demo):
    victim = requests.Session()
    picker = through_idp(victim, victim.get(f"{demo.urls.broker}/login?idp=entra"), "sam.lee@contoso.example")
    token = re.search(r'name="token" value="([^"]+)"', picker.text)[1]
    attacker = requests.Session()
    reply = attacker.post(f"{demo.urls.broker}/login/choose", data={"token": token, "portal": "academy"})
    assert reply.status_code == 400


def test_no_access_page_names_whom_to_contact(demo):
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/login?idp=okta")
    refused = through_idp(session, idp_page, "guest@northwind.example")
    assert refused.status_code == 403
    assert "learning-support@contoso.example" in refused.text


def test_required_groups_refuse_before_any_provisioning_or_assertion(demo):
    state = demo.apps.learnupon_states["sales"]
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/login/sales")
    refused = through_idp(session, idp_page, "priya.shah@contoso.example")
    assert refused.status_code == 403
    assert 'name="SAMLResponse"' not in refused.text
    assert state.find_user("priya.shah@contoso.example") is None


def test_portal_with_two_idps_offers_discovery_and_remembers_the_choice(demo):
    session = requests.Session()
    discovery = session.get(f"{demo.urls.broker}/login/academy?target=/courses/7")
    options = links(discovery)
    assert set(options) == {"Contoso staff (Microsoft Entra ID)", "Fabrikam partners (Okta)"}
    okta_page = session.get(demo.urls.broker + options["Fabrikam partners (Okta)"])
    assert okta_page.url.startswith(f"{demo.urls.idp}/okta/")
    landed = submit_form(session, through_idp(session, okta_page, "jordan.kim@fabrikam.example"))
    assert "Signed in to academy as jordan.kim@fabrikam.example" in landed.text
    assert groups_on_page(landed) == ["Partners", "Sales Team"]  # Okta sends names: passed through
    assert '<code id="relay-state">/courses/7</code>' in landed.text
    # Next time the remembered choice (signed cookie) skips discovery.
    again = session.get(f"{demo.urls.broker}/login/academy", allow_redirects=False)
    assert again.status_code == 302 and "/okta/" in again.headers["Location"]


def test_idp_hint_skips_discovery(demo):
    reply = requests.get(f"{demo.urls.broker}/login/academy?idp=okta", allow_redirects=False)
    assert reply.status_code == 302 and "/okta/" in reply.headers["Location"]
    assert requests.get(f"{demo.urls.broker}/login/academy?idp=nope").status_code == 400


def test_login_hint_is_forwarded_to_entra_only(demo):
    entra = requests.get(f"{demo.urls.broker}/login/academy?idp=entra&login_hint=alex.morgan@contoso.example",
                         allow_redirects=False)  # fmt: skip
    assert "login_hint=alex.morgan%40contoso.example" in entra.headers["Location"]
    okta = requests.get(f"{demo.urls.broker}/login/academy?idp=okta&login_hint=alex.morgan@contoso.example",
                        allow_redirects=False)  # fmt: skip
    assert "login_hint" not in okta.headers["Location"]


def test_idp_initiated_login_allowed_for_this_upstream_is_routed_by_relay_state(demo):
    session = requests.Session()
    apps = session.get(f"{demo.urls.idp}/entra/7f3c2a9e-5b1d-4e8f-9a6c-2d4b8e1f0a37/saml2/apps")
    form = re.search(r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="email" '
                     r'value="alex.morgan@contoso.example">', apps.text)  # fmt: skip
    posted = session.post(
        demo.urls.idp + html.unescape(form[1]),
        data={"email": "alex.morgan@contoso.example", "acs_url": f"{demo.urls.broker}/saml/acs",
              "relay_state": "sales"},
    )  # fmt: skip
    landed = submit_form(session, submit_form(session, posted))
    assert "Signed in to sales as alex.morgan@contoso.example" in landed.text


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)",
                                    "/courses/1\r\nX: y", "/courses/" + "a" * 600, "/admin/settings"])  # fmt: skip
def test_unsafe_or_unlisted_deep_links_are_refused(demo, target):
    reply = requests.get(f"{demo.urls.broker}/login/academy", params={"idp": "entra", "target": target},
                         allow_redirects=False)  # fmt: skip
    assert reply.status_code == 400
    assert "target page is not allowed" in reply.text


def test_demo_okta_idp_signs_like_okta_and_the_broker_accepts_it(demo):
    """Both Response and Assertion signed, PrefixList="xs" in each exc-c14n transform, xs:string values, and
    the names Okta admins type (FirstName, LastName, Email): what real Okta sends."""
    session = requests.Session()
    idp_page = session.get(f"{demo.urls.broker}/login/academy?idp=okta")
    idp_post = submit_form(session, idp_page, email="jordan.kim@fabrikam.example")
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', idp_post.text))
    document = base64.b64decode(html.unescape(fields["SAMLResponse"]))
    assert (
        document.count(
            b'<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/>'
        )
        == 2
    )
    assert document.count(b"<ds:SignatureValue>") == 2
    assert b'xsi:type="xs:string"' in document and b'Name="FirstName"' in document

    landed = submit_form(session, submit_form(session, idp_post))

    assert "Signed in to academy as jordan.kim@fabrikam.example" in landed.text
