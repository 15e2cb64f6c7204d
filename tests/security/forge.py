"""Building blocks for forging SAML responses from a genuinely signed one: parse, re-sign, wrap, graft.

Everything here works on documents the test IdP (broker.demo.idp_response) signed with its real key; the attack
corpus (corpus.py) combines these into named vectors.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from broker.demo.idp_response import ENTRA_ATTR
from broker.keys import KeyPair
from broker.saml.xml import BINDING_REDIRECT, DS, MD, SAML, SAMLP, STATUS_SUCCESS, format_instant, qname
from broker.saml.xmldsig import sign_enveloped, signature_placeholder
from tests.harness import ACS, IDP_ENTITY, IDP_SSO, Harness, Pending

ASSERTION = qname(SAML, "Assertion")
ISSUER = qname(SAML, "Issuer")
SUBJECT = qname(SAML, "Subject")
NAME_ID = qname(SAML, "NameID")
CONFIRMATION = qname(SAML, "SubjectConfirmation")
CONFIRMATION_DATA = qname(SAML, "SubjectConfirmationData")
CONDITIONS = qname(SAML, "Conditions")
ATTRIBUTE = qname(SAML, "Attribute")
ATTRIBUTE_VALUE = qname(SAML, "AttributeValue")
AUTHN_STATEMENT = qname(SAML, "AuthnStatement")
STATUS = qname(SAMLP, "Status")
SIGNATURE = qname(DS, "Signature")
SIGNED_INFO = qname(DS, "SignedInfo")
SIGNATURE_VALUE = qname(DS, "SignatureValue")
KEY_INFO = qname(DS, "KeyInfo")
REFERENCE = qname(DS, "Reference")
TRANSFORMS = qname(DS, "Transforms")
DIGEST_VALUE = qname(DS, "DigestValue")
SCD = f"{SUBJECT}/{CONFIRMATION}/{CONFIRMATION_DATA}"

EMAIL_CLAIM = ENTRA_ATTR + "emailaddress"
UPN_CLAIM = ENTRA_ATTR + "name"
EVIL_EMAIL = "ceo@contoso.example"
EVIL_ID = "_evil0000000000000000000000000000"
EVIL_RESPONSE_ID = "_evilresponse00000000000000000000"
ATTACKER_NS = "urn:x-attacker:wrapper"


def b64(document: bytes) -> str:
    return base64.b64encode(document).decode("ascii")


def parse(document: bytes) -> etree._Element:
    return etree.fromstring(document)  # our own, freshly signed output: trusted here


def emit(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def now() -> datetime:
    return datetime.now(UTC)


def signed_document(h: Harness, pending: Pending | None, config: str, **changes: object) -> bytes:
    """The baseline: a response the IdP signed ("assertion", "response", "both" or "none"), with `changes`."""
    return h.document(h.spec(pending, **{"sign": config, **changes}))


def signature_of(root: etree._Element, config: str) -> etree._Element:
    owner = root if config == "response" else root.find(ASSERTION)
    return owner.find(SIGNATURE)


# --- identities and wrapping --------------------------------------------------------------------------------


def set_identity(assertion: etree._Element, email: str) -> None:
    """Make an assertion speak for someone else (NameID and every email-like claim)."""
    assertion.find(f"{SUBJECT}/{NAME_ID}").text = email
    for attribute in assertion.iter(ATTRIBUTE):
        if attribute.get("Name") in (EMAIL_CLAIM, UPN_CLAIM):
            for value in attribute.findall(ATTRIBUTE_VALUE):
                value.text = email


def unsigned_copy(assertion: etree._Element, new_id: str | None = None, email: str | None = None):
    clone = copy.deepcopy(assertion)
    for signature in clone.findall(SIGNATURE):
        clone.remove(signature)
    if new_id:
        clone.set("ID", new_id)
    if email:
        set_identity(clone, email)
    return clone


def evil(assertion: etree._Element, *, same_id: bool = False) -> etree._Element:
    """The attacker's assertion: a copy of the real one, unsigned, for the CEO."""
    return unsigned_copy(assertion, None if same_id else EVIL_ID, EVIL_EMAIL)


def extensions(root: etree._Element) -> etree._Element:
    """samlp:Extensions where the schema puts it (after Issuer and Signature, before Status)."""
    element = etree.Element(qname(SAMLP, "Extensions"))
    root.find(STATUS).addprevious(element)
    return element


# --- signing as the IdP (or an attacker) might ----------------------------------------------------------------


def resign(signature: etree._Element, key_pair: KeyPair) -> None:
    """Recompute SignatureValue after editing SignedInfo, with the real key: the edit is then genuinely signed.
    (RSA PKCS#1 v1.5 is deterministic: re-signing an unedited SignedInfo reproduces the IdP's value exactly.)"""
    signed_info = signature.find(SIGNED_INFO)
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    value = key_pair.private_key.sign(canonical, PKCS1v15(), hashes.SHA256())
    signature.find(SIGNATURE_VALUE).text = base64.b64encode(value).decode("ascii")


class AnySigner(XMLSigner):
    """Signs with any algorithm signxml knows, SHA-1 included: what an upstream (or attacker) might send."""

    def check_deprecated_methods(self) -> None:
        return None


def sign_custom(
    element: etree._Element,
    key: object,
    *,
    cert: list | None = None,
    method: SignatureMethod = SignatureMethod.RSA_SHA256,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
    c14n: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    reference_uri: str | None = None,
) -> etree._Element:
    signer = AnySigner(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=c14n)
    return signer.sign(element, key=key, cert=cert, reference_uri=reference_uri)


def custom_signed_root(
    h: Harness, pending: Pending, config: str, sign: Callable[[etree._Element], etree._Element], **changes
) -> etree._Element:
    """The baseline, but signed by `sign` (placeholder right after Issuer, where SAML wants it)."""
    root = parse(signed_document(h, pending, "none", **changes))
    if config == "response":
        root.insert(1, signature_placeholder())
        return sign(root)
    assertion = root.find(ASSERTION)
    assertion.insert(1, signature_placeholder())
    root.replace(assertion, sign(assertion))
    return root


# --- other things the real IdP signs -------------------------------------------------------------------------


def signed_logout_response(h: Harness, in_response_to: str | None) -> etree._Element:
    """What an attacker can collect from the real IdP: a signed LogoutResponse (same key, same Issuer)."""
    logout = etree.Element(
        qname(SAMLP, "LogoutResponse"), nsmap={"samlp": SAMLP}, ID="_logout" + secrets.token_hex(12),
        Version="2.0", IssueInstant=format_instant(now()), Destination=ACS,
    )  # fmt: skip
    if in_response_to:
        logout.set("InResponseTo", in_response_to)
    etree.SubElement(logout, ISSUER, nsmap={None: SAML}).text = IDP_ENTITY
    logout.append(signature_placeholder())
    status = etree.SubElement(logout, STATUS)
    etree.SubElement(status, qname(SAMLP, "StatusCode"), Value=STATUS_SUCCESS)
    return sign_enveloped(logout, h.keys.idp)


def signed_metadata(h: Harness) -> etree._Element:
    """The IdP's own signed metadata: public, and signed with the very key the broker trusts."""
    entity = etree.Element(
        qname(MD, "EntityDescriptor"), nsmap={"md": MD}, ID="_metadata" + secrets.token_hex(12),
        entityID=IDP_ENTITY,
    )  # fmt: skip
    entity.append(signature_placeholder())
    idp = etree.SubElement(entity, qname(MD, "IDPSSODescriptor"), protocolSupportEnumeration=SAMLP)
    etree.SubElement(idp, qname(MD, "SingleSignOnService"), Binding=BINDING_REDIRECT, Location=IDP_SSO)
    return sign_enveloped(entity, h.keys.idp)
