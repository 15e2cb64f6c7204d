"""The unsolicited Response the broker posts to a LearnUpon portal, as the portal will read it."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from broker.demo.idp_response import DemoUser
from broker.saml.xml import DS, NAMEID_EMAIL, SAML, SAMLP, parse_instant, qname
from broker.saml.xmldsig import verify_enveloped
from tests.harness import BASE_URL, Harness


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys)


def form_fields(body: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', body)}


def login_and_get_outgoing(harness: Harness, portal: str = "academy", user=None, target=None):
    pending = harness.login(portal, target)
    kwargs = {"user": user} if user else {}
    document = harness.document(harness.spec(pending, **kwargs))
    reply = harness.post(harness.encode(document), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    body = reply.get_data(as_text=True)
    fields = form_fields(body)
    return reply, body, fields, etree.fromstring(base64.b64decode(fields["SAMLResponse"]))


def test_outgoing_response_is_unsolicited_and_addressed_to_the_portal(harness):
    _, _, _, response = login_and_get_outgoing(harness)
    acs = "https://academy.learnupon.com/saml/consumer"
    assert response.tag == qname(SAMLP, "Response")
    assert b"InResponseTo" not in etree.tostring(response)
    assert response.get("Destination") == acs
    assert response.findtext(qname(SAML, "Issuer")) == f"{BASE_URL}/idp"
    assertion = response.find(qname(SAML, "Assertion"))
    assert assertion.findtext(qname(SAML, "Issuer")) == f"{BASE_URL}/idp"
    name_id = assertion.find(f"{qname(SAML, 'Subject')}/{qname(SAML, 'NameID')}")
    assert (name_id.text, name_id.get("Format")) == ("alex@contoso.example", NAMEID_EMAIL)
    data = assertion.find(f".//{qname(SAML, 'SubjectConfirmationData')}")
    assert data.get("Recipient") == acs
    assert assertion.findtext(f".//{qname(SAML, 'Audience')}") == "https://academy.learnupon.com"
    expires = parse_instant(data.get("NotOnOrAfter"), "NotOnOrAfter")
    assert timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(minutes=5, seconds=5)


def test_outgoing_assertion_is_signed_with_the_portal_key_and_algorithm(harness, keys):
    _, _, _, response = login_and_get_outgoing(harness, "academy")
    assertion = response.find(qname(SAML, "Assertion"))
    assert verify_enveloped(assertion, [keys.broker.certificate]).element is not None
    method = assertion.find(
        f"{qname(DS, 'Signature')}/{qname(DS, 'SignedInfo')}/{qname(DS, 'SignatureMethod')}"
    )
    assert method.get("Algorithm").endswith("rsa-sha256")
    assert response.find(qname(DS, "Signature")) is None  # response signing is off by default

    _, _, _, sales = login_and_get_outgoing(harness, "sales")
    assertion = sales.find(qname(SAML, "Assertion"))
    method = assertion.find(
        f"{qname(DS, 'Signature')}/{qname(DS, 'SignedInfo')}/{qname(DS, 'SignatureMethod')}"
    )
    assert method.get("Algorithm") == "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    verify_enveloped(assertion, [keys.portal.certificate], allow_sha1=True)
    with pytest.raises(ValueError):
        verify_enveloped(assertion, [keys.broker.certificate], allow_sha1=True)


def test_response_signature_when_the_portal_asks_for_it(keys):
    harness = Harness(keys, config_overrides={"portals__academy__sign_response": True})
    _, _, _, response = login_and_get_outgoing(harness)
    verified = verify_enveloped(response, [keys.broker.certificate])
    verify_enveloped(verified.element.find(qname(SAML, "Assertion")), [keys.broker.certificate])


def test_autopost_page_works_without_javascript_and_has_a_strict_csp(harness):
    reply, body, fields, _ = login_and_get_outgoing(harness, target="/courses/42")
    csp = reply.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)[1]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action https://academy.learnupon.com" in csp
    assert f'<script nonce="{nonce}">' in body
    assert '<button type="submit">' in body
    assert fields["RelayState"] == "/courses/42"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_values_are_escaped_in_assertion_and_page(harness):
    user = DemoUser(
        "o.brien@contoso.example", 'Eve"><script>alert(1)</script>', "O'Brien & <Sons> ]]>", "oid"
    )
    _, body, _, response = login_and_get_outgoing(harness, user=user)
    assert "<script>alert(1)" not in body
    values = [v.text for v in response.iter(qname(SAML, "AttributeValue"))]
    assert 'Eve"><script>alert(1)</script>' in values
    assert "O'Brien & <Sons> ]]>" in values


def test_unknown_portal_is_a_404_page(harness):
    reply = harness.client.get("/login/nope")
    assert reply.status_code == 404
    assert "does not match any learning portal" in reply.get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil", "https://evil.example", "javascript:alert(1)",
                                    "/a\nb", "/" + "a" * 600])  # fmt: skip
def test_unsafe_targets_are_refused_at_login(harness, target):
    reply = harness.client.get("/login/academy", query_string={"target": target})
    assert reply.status_code == 400


def test_authn_request_has_what_entra_needs(harness):
    pending = harness.login()
    request = pending.authn_request
    assert pending.location.startswith("https://login.microsoftonline.com/")
    assert not request.get("ID")[0].isdigit()
    assert request.get("AssertionConsumerServiceURL") == f"{BASE_URL}/saml/acs"
    assert request.findtext(qname(SAML, "Issuer")) == f"{BASE_URL}/saml/metadata"
    assert request.find(qname(SAML, "Subject")) is None
    assert len(pending.relay_state.encode()) <= 80
    assert "Signature=" not in pending.location


def test_authn_request_is_signed_when_the_upstream_asks(keys):
    from urllib.parse import parse_qsl, quote, urlsplit

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    harness = Harness(keys, config_overrides={"upstreams__entra__sign_authn_requests": True})
    pending = harness.login()
    params = parse_qsl(urlsplit(pending.location).query)
    names = [name for name, _ in params]
    assert names == ["SAMLRequest", "RelayState", "SigAlg", "Signature"]
    signed = "&".join(f"{k}={quote(v, safe='')}" for k, v in params[:3]).encode()
    keys.broker.certificate.public_key().verify(
        base64.b64decode(params[3][1]), signed, padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "rsa-sha1"])
def test_our_signer_writes_exactly_what_plain_signxml_writes(keys, algorithm):
    """broker.saml.xmldsig trims signxml's per-call copying; the signature it produces must not change."""
    from datetime import UTC, datetime

    from signxml import XMLSigner

    from broker.saml.assertion import PortalTrust, build_assertion
    from broker.saml.xmldsig import EXC_C14N, OUTGOING_ALGORITHMS, sign_enveloped

    class PlainSigner(XMLSigner):
        def check_deprecated_methods(self) -> None:  # SHA-1 allowed, as for the portal leg
            return None

    trust = PortalTrust(
        "https://broker.test/idp", "https://p.test/saml/consumer", "https://p.test", keys.broker
    )
    assertion = build_assertion(trust, "a@b.test", {"groups": ("A & B", "<c>")}, now=datetime.now(UTC),
                                authn_instant=None)  # fmt: skip
    method, digest = OUTGOING_ALGORITHMS[algorithm]
    plain = PlainSigner(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=EXC_C14N).sign(
        etree.fromstring(etree.tostring(assertion)),
        key=keys.broker.private_key,
        cert=[keys.broker.certificate],
    )
    ours = sign_enveloped(assertion, keys.broker, algorithm)
    assert etree.tostring(ours) == etree.tostring(plain)
