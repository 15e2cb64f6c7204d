"""The unsolicited (IdP-initiated) Response the broker posts to a LearnUpon portal.

Built with lxml's object model (never string templates), so every value is escaped by the serializer.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from broker.keys import KeyPair
from broker.saml.xml import (
    AUTHN_PASSWORD_PROTECTED,
    BEARER,
    NAMEID_EMAIL,
    SAML,
    SAMLP,
    STATUS_SUCCESS,
    XS,
    XSI,
    format_instant,
    qname,
)
from broker.saml.xmldsig import sign_enveloped, signature_placeholder

_NSMAP = {"samlp": SAMLP, "saml": SAML}
_ASSERTION_NSMAP = {"saml": SAML, "xs": XS, "xsi": XSI}
XSI_TYPE = qname(XSI, "type")


@dataclass(frozen=True)
class PortalTrust:
    """How one portal expects its assertions: where, for whom, signed with which key and algorithm."""

    idp_entity_id: str
    acs_url: str
    audience: str
    key_pair: KeyPair
    algorithm: str = "rsa-sha256"
    sign_response: bool = False
    lifetime: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedResponse:
    saml_response: str  # base64, ready for the form field
    assertion_id: str
    response_id: str
    xml: bytes  # the document (for the admin trace and `broker simulate`; never logged)
    signed: bool = True  # False: a preview of what would be sent, which no portal accepts


def _new_id() -> str:
    return "_" + secrets.token_hex(20)


def _text(parent: etree._Element, tag: str, value: str, attrs: dict[str, str] | None = None, **kw: str):
    element = etree.SubElement(parent, tag, {**(attrs or {}), **kw})
    element.text = value
    return element


def build_assertion(
    trust: PortalTrust,
    email: str,
    attributes: dict[str, tuple[str, ...]],
    *,
    now: datetime,
    authn_instant: datetime | None,
    session_index: str | None = None,
    placeholder: bool = True,
) -> etree._Element:
    """An unsigned assertion with a signature placeholder after Issuer (where SAML's schema wants it)."""
    assertion_id = _new_id()
    not_on_or_after = format_instant(now + trust.lifetime)
    # NotBefore a little in the past: the portal's clock may run slightly behind ours.
    not_before = format_instant(now - timedelta(seconds=30))
    assertion = etree.Element(
        qname(SAML, "Assertion"), nsmap=_ASSERTION_NSMAP, ID=assertion_id, Version="2.0",
        IssueInstant=format_instant(now),
    )  # fmt: skip
    _text(assertion, qname(SAML, "Issuer"), trust.idp_entity_id)
    if placeholder:
        assertion.append(signature_placeholder())
    subject = etree.SubElement(assertion, qname(SAML, "Subject"))
    _text(subject, qname(SAML, "NameID"), email, Format=NAMEID_EMAIL)
    confirmation = etree.SubElement(subject, qname(SAML, "SubjectConfirmation"), Method=BEARER)
    etree.SubElement(
        confirmation,
        qname(SAML, "SubjectConfirmationData"),
        NotOnOrAfter=not_on_or_after,
        Recipient=trust.acs_url,
    )
    conditions = etree.SubElement(
        assertion, qname(SAML, "Conditions"), NotBefore=not_before, NotOnOrAfter=not_on_or_after
    )
    restriction = etree.SubElement(conditions, qname(SAML, "AudienceRestriction"))
    _text(restriction, qname(SAML, "Audience"), trust.audience)
    authn = etree.SubElement(
        assertion,
        qname(SAML, "AuthnStatement"),
        AuthnInstant=format_instant(authn_instant or now),
        SessionIndex=session_index or assertion_id,
    )
    context = etree.SubElement(authn, qname(SAML, "AuthnContext"))
    _text(context, qname(SAML, "AuthnContextClassRef"), AUTHN_PASSWORD_PROTECTED)
    if attributes:
        statement = etree.SubElement(assertion, qname(SAML, "AttributeStatement"))
        for name, values in attributes.items():
            attribute = etree.SubElement(statement, qname(SAML, "Attribute"), Name=name)
            for value in values:
                _text(attribute, qname(SAML, "AttributeValue"), value, {XSI_TYPE: "xs:string"})
    return assertion


def issue_response(
    trust: PortalTrust,
    email: str,
    attributes: dict[str, tuple[str, ...]],
    *,
    now: datetime,
    authn_instant: datetime | None = None,
    session_index: str | None = None,
    sign: bool = True,
) -> IssuedResponse:
    """Sign the assertion (and the Response, when the portal wants that too) for an unsolicited POST.
    With `sign=False`: the same document without any signature, a preview that no portal would accept
    (the admin's trace shows it; only a real login, or the trace's Continue, signs)."""
    assertion = build_assertion(
        trust, email, attributes, now=now, authn_instant=authn_instant, session_index=session_index,
        placeholder=sign,
    )  # fmt: skip
    if sign:
        assertion = sign_enveloped(assertion, trust.key_pair, trust.algorithm)
    response_id = _new_id()
    response = etree.Element(
        qname(SAMLP, "Response"), nsmap=_NSMAP, ID=response_id, Version="2.0", IssueInstant=format_instant(now),
        Destination=trust.acs_url,
    )  # fmt: skip
    _text(response, qname(SAML, "Issuer"), trust.idp_entity_id)
    if sign and trust.sign_response:
        response.append(signature_placeholder())
    status = etree.SubElement(response, qname(SAMLP, "Status"))
    etree.SubElement(status, qname(SAMLP, "StatusCode"), Value=STATUS_SUCCESS)
    response.append(assertion)
    if sign and trust.sign_response:
        response = sign_enveloped(response, trust.key_pair, trust.algorithm)
    xml = etree.tostring(response, xml_declaration=True, encoding="UTF-8")
    return IssuedResponse(
        saml_response=base64.b64encode(xml).decode("ascii"),
        assertion_id=assertion.get("ID") or "",
        response_id=response_id,
        xml=xml,
        signed=sign,
    )
