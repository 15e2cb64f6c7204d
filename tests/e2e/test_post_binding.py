"""IdPs whose metadata lists only an HTTP-POST SingleSignOnService (real Google and OneLogin metadata of 2016):
the broker sends the AuthnRequest in a self-submitting form (a button without JavaScript), signed inside the
XML when the IdP asks, and the IdP's answer completes the login. Redirect stays the choice when offered."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree, html

from broker.saml.xml import BINDING_POST, BINDING_REDIRECT, DS, MD, SAMLP, qname
from broker.saml.xmldsig import verify_enveloped
from tests.harness import IDP_ENTITY, IDP_SSO, Harness, Pending

REAL = Path(__file__).parents[1] / "interop" / "real"


def metadata_file(tmp_path: Path, keys, bindings: tuple[str, ...], *, want_signed: bool = False) -> str:
    """IdP metadata in the shape Google publishes: entity, signing certificate, SSO endpoints by binding."""
    root = etree.Element(qname(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS}, entityID=IDP_ENTITY)
    idp = etree.SubElement(root, qname(MD, "IDPSSODescriptor"), protocolSupportEnumeration=SAMLP,
                           WantAuthnRequestsSigned="true" if want_signed else "false")  # fmt: skip
    key_info = etree.SubElement(
        etree.SubElement(idp, qname(MD, "KeyDescriptor"), use="signing"), qname(DS, "KeyInfo")
    )
    etree.SubElement(
        etree.SubElement(key_info, qname(DS, "X509Data")), qname(DS, "X509Certificate")
    ).text = keys.idp.cert_b64
    for binding in bindings:
        etree.SubElement(idp, qname(MD, "SingleSignOnService"), Binding=binding, Location=IDP_SSO)
    path = tmp_path / f"idp-{'-'.join(b.rsplit(':', 1)[1] for b in bindings)}.xml"
    path.write_bytes(etree.tostring(root))
    return str(path)


@dataclass
class PostedRequest:
    action: str
    relay_state: str
    request: etree._Element
    page: html.HtmlElement
    csp: str


def start_post_login(harness: Harness, portal: str = "academy") -> PostedRequest:
    reply = harness.client.get(f"/login/{portal}")
    assert reply.status_code == 200, reply.status_code
    assert reply.headers["Cache-Control"] == "no-store"
    page = html.fromstring(reply.data)
    (form,) = page.forms
    fields = dict(form.form_values())
    request = etree.fromstring(base64.b64decode(fields["SAMLRequest"]))
    return PostedRequest(
        form.action, fields["RelayState"], request, page, reply.headers["Content-Security-Policy"]
    )


def upstream(keys, tmp_path: Path, *bindings: str, **settings: object) -> dict:
    return {"preset": "entra", "metadata_file": metadata_file(tmp_path, keys, bindings, **settings)}


def test_post_only_idp_gets_a_self_submitting_form_and_the_login_completes(keys, tmp_path):
    harness = Harness(keys, config_overrides={"upstreams__entra": upstream(keys, tmp_path, BINDING_POST)})

    sent = start_post_login(harness)

    assert sent.action == IDP_SSO
    assert sent.page.forms[0].method.lower() == "post"
    # Works without JavaScript: a visible submit button; with it, a nonce'd script submits the form.
    assert sent.page.xpath('//form//button[@type="submit"]')
    nonce = re.search(r"script-src 'nonce-([^']+)'", sent.csp)[1]
    assert sent.page.xpath("//script/@nonce") == [nonce]
    assert "form-action https://login.microsoftonline.com" in sent.csp
    assert sent.request.tag == qname(SAMLP, "AuthnRequest")
    assert sent.request.get("Destination") == IDP_SSO
    assert sent.request.find(qname(DS, "Signature")) is None  # not asked for

    response = harness.valid_response(pending_for(sent))
    reply = harness.post(response, sent.relay_state)

    assert reply.status_code == 200
    assert 'action="https://academy.learnupon.com/saml/consumer"' in reply.get_data(as_text=True)


def pending_for(sent: PostedRequest) -> Pending:
    return Pending(sent.relay_state, sent.request.get("ID"), sent.action, sent.request)


def test_post_binding_request_is_signed_with_the_broker_key_when_the_idp_asks(keys, tmp_path):
    harness = Harness(
        keys, config_overrides={"upstreams__entra": upstream(keys, tmp_path, BINDING_POST, want_signed=True)}
    )

    sent = start_post_login(harness)

    verified = verify_enveloped(sent.request, [keys.broker.certificate])
    assert verified.element.get("ID") == sent.request.get("ID")
    with pytest.raises(ValueError, match="does not verify"):
        verify_enveloped(sent.request, [keys.idp.certificate])
    reply = harness.post(harness.valid_response(pending_for(sent)), sent.relay_state)
    assert reply.status_code == 200


def test_redirect_is_preferred_when_the_idp_offers_both(keys, tmp_path):
    both = upstream(keys, tmp_path, BINDING_POST, BINDING_REDIRECT)
    harness = Harness(keys, config_overrides={"upstreams__entra": both})

    pending = harness.login()  # asserts a 302 to the IdP

    assert pending.location.startswith(IDP_SSO + "?SAMLRequest=")


def test_real_google_post_only_metadata_starts_a_post_login_to_google(keys):
    google = {"preset": "google", "metadata_file": str(REAL / "google" / "metadata.xml")}
    harness = Harness(keys, config_overrides={"upstreams__entra": google})

    sent = start_post_login(harness)

    assert sent.action == "https://accounts.google.com/o/saml2/idp?idpid=C02dfl1r1"
    assert sent.request.get("Destination") == sent.action
    assert len(sent.relay_state) >= 40  # Google needs a non-empty RelayState; ours is an opaque key


def test_admin_flow_tester_uses_the_post_form_too(keys, tmp_path, monkeypatch):
    from tests.web.test_expired_upstream_certificate import admin_index

    harness = Harness(keys, config_overrides={"upstreams__entra": upstream(keys, tmp_path, BINDING_POST)})
    admin_index(harness, monkeypatch)

    reply = harness.client.get("/admin/test/academy?idp=entra")

    assert reply.status_code == 200
    page = html.fromstring(reply.data)
    assert page.forms[0].action == IDP_SSO
    assert "SAMLRequest" in dict(page.forms[0].form_values())
