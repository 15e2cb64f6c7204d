"""Responses signed fresh by implementations that are not the broker's: the `xmlsec1` command (libxmlsec1, what
Shibboleth-era and many PHP/Ruby IdPs sign with) and pysaml2's IdP, in the shapes real IdPs send, through the
whole broker (Flask app, ACS, claim preset, assertion to the portal).

- Okta: saml2: prefixes, xs:string typed values, Response and Assertion both signed, PrefixList="xs".
- AD FS: default-namespace Assertion, unprefixed Signature and KeyInfo, Assertion signed.
- Keycloak / Shibboleth: both signed, dsig: prefix, KeyInfo with KeyName and X509Data.
"""

from __future__ import annotations

import base64
import html
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

from broker.demo.idp_response import DemoUser, ResponseSpec, build_assertion
from broker.saml.metadata import sp_metadata
from broker.saml.xml import DS, SAML, SAMLP, STATUS_SUCCESS, XS, format_instant, qname
from tests.harness import ACS, SP_ENTITY, Harness, Pending
from tests.interop.conftest import UPSTREAM_ENTITY_ID

pytestmark = [pytest.mark.xmlsec1, pytest.mark.usefixtures("xmlsec1_binary")]

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ADFS_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

KIM = DemoUser("kim.lee@fabrikam.example", "Kim", "Lee", "oid-kim", ["Partners", "Sales Team"])


def signature_template(
    element_id: str, *, prefix: str | None, prefix_list: str | None = None, key_name: bool = False
) -> etree._Element:
    """An unsigned ds:Signature, as an IdP hands xmlsec1 to fill in (DigestValue, SignatureValue, X509Data)."""
    signature = etree.Element(qname(DS, "Signature"), nsmap={prefix: DS})
    signed_info = etree.SubElement(signature, qname(DS, "SignedInfo"))
    etree.SubElement(signed_info, qname(DS, "CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, qname(DS, "SignatureMethod"), Algorithm=RSA_SHA256)
    reference = etree.SubElement(signed_info, qname(DS, "Reference"), URI=f"#{element_id}")
    transforms = etree.SubElement(reference, qname(DS, "Transforms"))
    etree.SubElement(transforms, qname(DS, "Transform"), Algorithm=ENVELOPED)
    c14n = etree.SubElement(transforms, qname(DS, "Transform"), Algorithm=EXC_C14N)
    if prefix_list is not None:
        etree.SubElement(
            c14n, f"{{{EXC_C14N}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N}, PrefixList=prefix_list
        )
    etree.SubElement(reference, qname(DS, "DigestMethod"), Algorithm=SHA256)
    etree.SubElement(reference, qname(DS, "DigestValue"))
    etree.SubElement(signature, qname(DS, "SignatureValue"))
    key_info = etree.SubElement(signature, qname(DS, "KeyInfo"))
    if key_name:
        etree.SubElement(key_info, qname(DS, "KeyName"))
    etree.SubElement(key_info, qname(DS, "X509Data"))
    return signature


def xmlsec1_sign(binary: str, document: bytes, keys, folder: Path, *, key_name: str | None = None) -> bytes:
    """Sign the first Signature template in document order with the xmlsec1 command."""
    folder.mkdir(parents=True, exist_ok=True)
    source, target = folder / "unsigned.xml", folder / "signed.xml"
    source.write_bytes(document)
    key = f"--privkey-pem:{key_name}" if key_name else "--privkey-pem"
    command = [
        binary, "--sign", key, f"{keys.path('idp', 'key')},{keys.path('idp', 'crt')}",
        "--id-attr:ID", f"{SAML}:Assertion", "--id-attr:ID", f"{SAMLP}:Response",
        "--output", str(target), str(source),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    return target.read_bytes()


def response_around(
    assertion_xml: bytes, spec: ResponseSpec, *, nsmap: dict, template: Callable | None
) -> bytes:
    """The Response envelope; with `template`, a Signature template after Issuer (for the Response's own)."""
    response = etree.Element(
        qname(SAMLP, "Response"), nsmap=nsmap, ID=spec.response_id, Version="2.0",
        IssueInstant=format_instant(spec.now), Destination=spec.destination, InResponseTo=spec.in_response_to,
    )  # fmt: skip
    issuer = etree.SubElement(response, qname(SAML, "Issuer"))
    issuer.text = spec.issuer
    if template is not None:
        response.append(template(spec.response_id))
    status = etree.SubElement(response, qname(SAMLP, "Status"))
    etree.SubElement(status, qname(SAMLP, "StatusCode"), Value=STATUS_SUCCESS)
    response.append(etree.fromstring(assertion_xml))
    return etree.tostring(response)


def assertion_with_template(spec: ResponseSpec, template: etree._Element) -> bytes:
    assertion = build_assertion(replace(spec, sign="none"))
    assertion.insert(1, template)  # after Issuer, where SAML's schema puts it
    return etree.tostring(assertion)


def post_to_broker(harness: Harness, pending: Pending, document: bytes) -> str:
    reply = harness.post(base64.b64encode(document).decode(), pending.relay_state)
    body = reply.get_data(as_text=True)
    assert reply.status_code == 200, body[:600]
    return body


def outgoing_values(body: str) -> tuple[str, dict[str, list[str]]]:
    """NameID and attributes of the assertion the broker posts to the portal."""
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', body))
    root = etree.fromstring(base64.b64decode(html.unescape(fields["SAMLResponse"])))
    name_id = next(root.iter(qname(SAML, "NameID"))).text
    attributes = {
        a.get("Name"): [v.text for v in a.findall(qname(SAML, "AttributeValue"))]
        for a in root.iter(qname(SAML, "Attribute"))
    }
    return name_id, attributes


GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"


def harness_for(keys, preset: str, entity_id: str) -> Harness:
    return Harness(
        keys, config_overrides={"upstreams__entra__preset": preset, "upstreams__entra__entity_id": entity_id}
    )


def test_okta_shaped_response_signed_twice_by_xmlsec1_with_a_prefix_list_logs_in(
    keys, xmlsec1_binary, tmp_path
):
    entity = "http://www.okta.com/exk1xmlsec1okta"
    harness = harness_for(keys, "okta", entity)
    pending = harness.login()
    spec = replace(
        harness.spec(pending, user=KIM), issuer=entity, attributes=KIM.okta_attributes(), shape="okta"
    )
    template = lambda element_id: signature_template(element_id, prefix="ds", prefix_list="xs")  # noqa: E731
    signed_assertion = xmlsec1_sign(
        xmlsec1_binary, assertion_with_template(spec, template(spec.assertion_id)), keys, tmp_path / "a"
    )
    unsigned = response_around(signed_assertion, spec, nsmap={"saml2p": SAMLP, "xs": XS}, template=template)
    document = xmlsec1_sign(xmlsec1_binary, unsigned, keys, tmp_path / "r")
    assert document.count(b'PrefixList="xs"') == 2 and document.count(b"<ds:SignatureValue>") == 2
    assert b'xsi:type="xs:string"' in document

    name_id, attributes = outgoing_values(post_to_broker(harness, pending, document))

    assert name_id == KIM.email
    assert attributes[GIVEN] == ["Kim"] and attributes[SURNAME] == ["Lee"]
    assert attributes["groups"] == ["Partners", "Sales Team"]


def test_okta_shaped_response_with_a_value_changed_after_xmlsec1_signed_it_is_refused(
    keys, xmlsec1_binary, tmp_path
):
    entity = "http://www.okta.com/exk1xmlsec1okta"
    harness = harness_for(keys, "okta", entity)
    pending = harness.login()
    spec = replace(
        harness.spec(pending, user=KIM), issuer=entity, attributes=KIM.okta_attributes(), shape="okta"
    )
    signed = xmlsec1_sign(
        xmlsec1_binary,
        assertion_with_template(spec, signature_template(spec.assertion_id, prefix="ds", prefix_list="xs")),
        keys,
        tmp_path,
    )
    document = response_around(
        signed.replace(b">Partners<", b">Admins<"), spec, nsmap={"saml2p": SAMLP}, template=None
    )

    reply = harness.post(base64.b64encode(document).decode(), pending.relay_state)

    assert reply.status_code == 400


def test_adfs_shaped_response_signed_by_xmlsec1_logs_in_with_the_adfs_preset(keys, xmlsec1_binary, tmp_path):
    entity = "http://adfs.contoso.example/adfs/services/trust"
    harness = harness_for(keys, "adfs", entity)
    pending = harness.login()
    attributes = {
        ADFS_CLAIMS + "upn": [KIM.email],
        ADFS_CLAIMS + "givenname": [KIM.first_name],
        ADFS_CLAIMS + "surname": [KIM.last_name],
        "http://schemas.xmlsoap.org/claims/Group": KIM.groups,
    }
    spec = replace(
        harness.spec(pending, user=KIM), issuer=entity, attributes=attributes, name_id="FABRIKAM\\kim"
    )
    # shape "entra": <Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">; and an unprefixed Signature
    template = signature_template(spec.assertion_id, prefix=None)
    signed = xmlsec1_sign(xmlsec1_binary, assertion_with_template(spec, template), keys, tmp_path)
    assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in signed
    assert b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"' in signed
    document = response_around(signed, spec, nsmap={"samlp": SAMLP}, template=None)

    name_id, outgoing = outgoing_values(post_to_broker(harness, pending, document))

    assert name_id == KIM.email  # the NameID is a down-level name: the UPN claim is the email
    assert outgoing[GIVEN] == ["Kim"] and outgoing[SURNAME] == ["Lee"]
    assert outgoing["groups"] == ["Partners", "Sales Team"]


def test_keycloak_shaped_response_with_key_name_and_x509_data_signed_twice_logs_in(
    keys, xmlsec1_binary, tmp_path
):
    entity = "https://keycloak.fabrikam.example/realms/staff"
    harness = harness_for(keys, "generic", entity)
    pending = harness.login()
    attributes = {"email": [KIM.email], "firstName": [KIM.first_name], "lastName": [KIM.last_name],
                  "Role": ["ignored"], "groups": KIM.groups}  # fmt: skip
    spec = replace(harness.spec(pending, user=KIM), issuer=entity, attributes=attributes, shape="okta")
    template = lambda element_id: signature_template(element_id, prefix="dsig", key_name=True)  # noqa: E731
    key_id = "k3ycl0ak-rs256-kid"
    signed_assertion = xmlsec1_sign(
        xmlsec1_binary, assertion_with_template(spec, template(spec.assertion_id)), keys, tmp_path / "a",
        key_name=key_id,
    )  # fmt: skip
    # the Response declares the Assertion's own prefix (lxml would re-prefix a moved signed element otherwise)
    unsigned = response_around(
        signed_assertion, spec, nsmap={"samlp": SAMLP, "saml2": SAML}, template=template
    )
    document = xmlsec1_sign(xmlsec1_binary, unsigned, keys, tmp_path / "r", key_name=key_id)
    assert document.count(f"<dsig:KeyName>{key_id}</dsig:KeyName>".encode()) == 2
    assert document.count(b"<dsig:X509Certificate>") == 2

    name_id, outgoing = outgoing_values(post_to_broker(harness, pending, document))

    assert name_id == KIM.email
    assert outgoing[GIVEN] == ["Kim"] and outgoing["groups"] == ["Partners", "Sales Team"]


# --- pysaml2's IdP, answering the broker's real AuthnRequest -------------------------------------------------


def test_pysaml2_idp_both_signed_with_oid_names_and_typed_values_logs_in(
    keys, upstream_keys, make_upstream_idp
):
    harness = Harness(keys, config_overrides={
        "upstreams__entra__preset": "generic", "upstreams__entra__entity_id": UPSTREAM_ENTITY_ID,
        "upstreams__entra__certificates": [str(upstream_keys.cert)],
    })  # fmt: skip
    idp = make_upstream_idp(sp_metadata(SP_ENTITY, ACS, harness.runtime.broker_keys, sign_requests=False))
    pending = harness.login()
    response = idp.create_authn_response(
        # pysaml2 sends these under their urn:oid: names with NameFormat uri, as Shibboleth does
        {"givenName": ["Kim"], "sn": ["Lee"], "mail": [KIM.email], "groups": KIM.groups},
        in_response_to=pending.request_id, destination=ACS, sp_entity_id=SP_ENTITY, userid=KIM.email,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=KIM.email),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
               "authn_auth": UPSTREAM_ENTITY_ID},
        sign_assertion=True, sign_response=True,
    )  # fmt: skip
    document = str(response).encode()
    assert document.count(b"SignatureValue>") == 4  # two signatures, each an open and a close tag
    assert b'Name="urn:oid:2.5.4.42"' in document
    assert b"xs:string" in document

    name_id, outgoing = outgoing_values(post_to_broker(harness, pending, document))

    assert name_id == KIM.email
    assert outgoing[GIVEN] == ["Kim"] and outgoing[SURNAME] == ["Lee"]
    assert outgoing["groups"] == ["Partners", "Sales Team"]
