"""Strict validation of an upstream IdP's SAML Response (the broker's ACS).

Everything that becomes part of the Identity is read from XML returned by signature verification, never
from the document as posted. Each check raises SamlRejected naming the check, so logs and the admin trace
say exactly what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cryptography import x509
from lxml import etree

from broker.errors import SamlRejected
from broker.model import Identity
from broker.saml.metadata import UpstreamIdp
from broker.saml.xml import (
    BEARER,
    DS,
    SAML,
    SAMLP,
    STATUS_SUCCESS,
    UnsafeXml,
    decode_base64,
    is_xml_id,
    parse_instant,
    parse_untrusted,
    qname,
    text_of,
)
from broker.saml.xmldsig import (
    CertificateExpired,
    Sha1Refused,
    SignatureRejected,
    VerifiedElement,
    verify_enveloped,
)

ASSERTION = qname(SAML, "Assertion")
ISSUER = qname(SAML, "Issuer")
SIGNATURE = qname(DS, "Signature")
KNOWN_CONDITIONS = {
    qname(SAML, "AudienceRestriction"),
    qname(SAML, "OneTimeUse"),
    qname(SAML, "ProxyRestriction"),
}

Trace = Callable[[str, str], None]


@dataclass(frozen=True)
class Expectations:
    """What a response must say to be accepted by this broker for this login."""

    upstream_name: str
    upstream: UpstreamIdp
    sp_entity_id: str
    acs_url: str
    request_id: str | None  # None: an unsolicited response, which must then carry no InResponseTo
    now: datetime
    skew: timedelta
    max_bytes: int
    allow_sha1: bool = False
    enforce_certificate_expiry: bool = False


@dataclass(frozen=True)
class ValidatedResponse:
    identity: Identity
    replay_until: datetime  # keep the assertion ID in the replay cache until then
    issued_at: datetime | None = None  # the Assertion's IssueInstant (checked against the store epoch)
    # Set when the signature verified only with a metadata certificate past its notAfter (accepted: warn).
    expired_certificate: x509.Certificate | None = None


def _no_trace(check: str, detail: str) -> None:
    return None


def _reject(check: str, reason: str, expected: object = None, got: object = None) -> SamlRejected:
    return SamlRejected(check, reason, expected=expected, got=got)


def _instant(value: str | None, what: str) -> datetime:
    try:
        return parse_instant(value, what)
    except UnsafeXml as exc:
        raise _reject("time", str(exc)) from None


def _optional_child(parent: etree._Element, tag: str, what: str) -> etree._Element | None:
    found = parent.findall(tag)
    if len(found) > 1:
        raise _reject("structure", f"more than one {what}")
    return found[0] if found else None


def _only_child(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = _optional_child(parent, tag, what)
    if found is None:
        raise _reject("structure", f"{what} is missing")
    return found


# Every attribute an XML-DSig implementation might treat as an ID (signxml looks up all of these names).
_ID_ATTRIBUTES = etree.XPath("//@*[local-name()='ID' or local-name()='Id' or local-name()='id']")


def _check_unique_ids(root: etree._Element) -> None:
    values = [str(value) for value in cast(list, _ID_ATTRIBUTES(root))]
    if len(values) != len(set(values)):
        duplicate = next(v for v in values if values.count(v) > 1)
        raise _reject("structure", f"duplicate ID {duplicate!r}")


def _read_document(saml_response: str, exp: Expectations) -> etree._Element:
    try:
        document = decode_base64(saml_response, max_bytes=exp.max_bytes)
        root = parse_untrusted(document)
    except UnsafeXml as exc:
        raise _reject("xml", str(exc)) from None
    if root.tag != qname(SAMLP, "Response"):
        raise _reject("xml", f"not a SAML Response (root element {etree.QName(root).localname})")
    _check_unique_ids(root)
    return root


def _check_time_window(
    not_before: str | None, not_on_or_after: str | None, what: str, exp: Expectations
) -> None:
    if not_before is not None and _instant(not_before, f"{what} NotBefore") > exp.now + exp.skew:
        raise _reject("time", f"{what} is not yet valid", expected=f"NotBefore <= {exp.now}", got=not_before)
    if (
        not_on_or_after is not None
        and _instant(not_on_or_after, f"{what} NotOnOrAfter") <= exp.now - exp.skew
    ):
        raise _reject(
            "time", f"{what} has expired", expected=f"NotOnOrAfter > {exp.now}", got=not_on_or_after
        )


def _check_envelope(response: etree._Element, exp: Expectations, trace: Trace) -> None:
    """Response-level facts: version, destination, status, issuer, InResponseTo."""
    if response.get("Version") != "2.0":
        raise _reject("xml", "Response Version must be 2.0", expected="2.0", got=response.get("Version"))
    if not is_xml_id(response.get("ID")):
        raise _reject("structure", "Response ID is missing or not a valid XML ID", got=response.get("ID"))
    _instant(response.get("IssueInstant"), "Response IssueInstant")
    destination = response.get("Destination")
    if destination != exp.acs_url:
        raise _reject(
            "destination", "Destination is missing or not our ACS", expected=exp.acs_url, got=destination
        )
    trace("destination", destination)
    status = response.find(f"{qname(SAMLP, 'Status')}/{qname(SAMLP, 'StatusCode')}")
    code = status.get("Value") if status is not None else None
    if code != STATUS_SUCCESS:
        inner = status.find(qname(SAMLP, "StatusCode")) if status is not None else None
        detail = inner.get("Value") if inner is not None else None
        raise _reject("status", "the IdP did not report success", expected=STATUS_SUCCESS, got=detail or code)
    trace("status", "Success")
    issuer = _optional_child(response, ISSUER, "Response Issuer")
    if issuer is not None and text_or_reject(issuer) != exp.upstream.entity_id:
        raise _reject(
            "issuer",
            "Response Issuer is not the upstream IdP",
            expected=exp.upstream.entity_id,
            got=text_or_reject(issuer),
        )
    in_response_to = response.get("InResponseTo")
    if in_response_to != exp.request_id and not (in_response_to is None and exp.request_id is not None):
        raise _reject(
            "in_response_to",
            "Response InResponseTo does not match a pending request",
            expected=exp.request_id,
            got=in_response_to,
        )


def text_or_reject(element: etree._Element) -> str:
    try:
        return text_of(element).strip()
    except UnsafeXml as exc:
        raise _reject("structure", str(exc)) from None


def _verify(element: etree._Element, exp: Expectations, what: str, trace: Trace) -> VerifiedElement:
    setting = f"upstreams.{exp.upstream_name}"
    try:
        verified = verify_enveloped(
            element,
            exp.upstream.certificates,
            allow_sha1=exp.allow_sha1,
            now=exp.now,
            enforce_certificate_expiry=exp.enforce_certificate_expiry,
        )
    except Sha1Refused:
        raise _reject(
            "signature",
            f"{what} is signed with SHA-1, which is refused because SHA-1 signatures can be forged; ask the "
            f"IdP to sign with RSA-SHA256, or set {setting}.allow_sha1: true to accept it from this upstream",
        ) from None
    except CertificateExpired as exc:
        raise _reject(
            "signature",
            f"{what} signature: {exc}, and {setting}.enforce_certificate_expiry is true; load the upstream's "
            "current metadata (with its new certificate), or set it to false to accept metadata certificates "
            "past their end date",
        ) from None
    except SignatureRejected as exc:
        raise _reject("signature", f"{what} signature: {exc}") from None
    note = (
        " (its certificate has expired: accepted because metadata lists it)"
        if verified.certificate_expired
        else ""
    )
    trace("signature", f"{what} signature verified with a certificate from the upstream's metadata{note}")
    return verified


def _signed_assertion(
    response: etree._Element, exp: Expectations, trace: Trace
) -> tuple[etree._Element, x509.Certificate | None]:
    """Exactly one assertion, covered by a valid signature (its own, or the Response's). Second value: the
    expired metadata certificate a signature was accepted with, if any."""
    if response.find(f".//{qname(SAML, 'EncryptedAssertion')}") is not None:
        raise _reject(
            "assertion", "encrypted assertions are not supported: turn off token encryption upstream"
        )
    everywhere = list(response.iter(ASSERTION))
    if len(everywhere) != 1 or everywhere[0].getparent() is not response:
        raise _reject(
            "assertion",
            "the Response must hold exactly one Assertion, directly",
            expected=1,
            got=len(everywhere),
        )
    assertion = everywhere[0]
    expired: x509.Certificate | None = None
    response_signatures = response.findall(SIGNATURE)
    if response_signatures:
        verified = _verify(response, exp, "Response", trace)
        expired = verified.certificate if verified.certificate_expired else None
        inner = [child for child in verified.element.iter(ASSERTION)]
        if len(inner) != 1:
            raise _reject("assertion", "the signed Response must hold exactly one Assertion")
        assertion = inner[0]
        if assertion.find(SIGNATURE) is not None:
            verified = _verify(assertion, exp, "Assertion", trace)
            assertion = verified.element
            expired = expired or (verified.certificate if verified.certificate_expired else None)
        return assertion, expired
    if assertion.find(SIGNATURE) is None:
        raise _reject("signature", "neither the Response nor the Assertion is signed")
    verified = _verify(assertion, exp, "Assertion", trace)
    return verified.element, (verified.certificate if verified.certificate_expired else None)


def _check_subject(
    assertion: etree._Element, exp: Expectations, trace: Trace
) -> tuple[str, str | None, datetime]:
    subject = _only_child(assertion, qname(SAML, "Subject"), "Subject")
    name_id = _only_child(subject, qname(SAML, "NameID"), "NameID")
    value = text_or_reject(name_id)
    if not value:
        raise _reject("subject", "NameID is empty")
    confirmations = subject.findall(qname(SAML, "SubjectConfirmation"))
    if len(confirmations) != 1 or confirmations[0].get("Method") != BEARER:
        raise _reject(
            "subject_confirmation",
            "exactly one bearer SubjectConfirmation is required",
            expected=BEARER,
            got=[c.get("Method") for c in confirmations],
        )
    data = _only_child(confirmations[0], qname(SAML, "SubjectConfirmationData"), "SubjectConfirmationData")
    recipient = data.get("Recipient")
    if recipient != exp.acs_url:
        raise _reject(
            "recipient",
            "SubjectConfirmationData Recipient is not our ACS",
            expected=exp.acs_url,
            got=recipient,
        )
    not_on_or_after = data.get("NotOnOrAfter")
    if not_on_or_after is None:
        raise _reject("time", "bearer SubjectConfirmationData has no NotOnOrAfter")
    _check_time_window(data.get("NotBefore"), not_on_or_after, "SubjectConfirmationData", exp)
    in_response_to = data.get("InResponseTo")
    if in_response_to != exp.request_id:
        raise _reject(
            "in_response_to",
            "InResponseTo does not match a pending request from this broker",
            expected=exp.request_id,
            got=in_response_to,
        )
    trace("subject_confirmation", f"bearer, Recipient {recipient}, InResponseTo {in_response_to}")
    return value, name_id.get("Format"), _instant(not_on_or_after, "SubjectConfirmationData NotOnOrAfter")


def _check_conditions(assertion: etree._Element, exp: Expectations, trace: Trace) -> datetime | None:
    conditions = _only_child(assertion, qname(SAML, "Conditions"), "Conditions")
    _check_time_window(conditions.get("NotBefore"), conditions.get("NotOnOrAfter"), "Conditions", exp)
    restrictions = conditions.findall(qname(SAML, "AudienceRestriction"))
    if not restrictions:
        raise _reject("audience", "no AudienceRestriction", expected=exp.sp_entity_id)
    for restriction in restrictions:
        audiences = [text_or_reject(a) for a in restriction.findall(qname(SAML, "Audience"))]
        if exp.sp_entity_id not in audiences:
            raise _reject(
                "audience",
                "an AudienceRestriction does not name this broker",
                expected=exp.sp_entity_id,
                got=audiences,
            )
    for condition in conditions:
        if isinstance(condition.tag, str) and condition.tag not in KNOWN_CONDITIONS:
            raise _reject("conditions", f"unknown condition {etree.QName(condition).localname}")
    trace("audience", exp.sp_entity_id)
    trace("time", "Conditions and SubjectConfirmationData are within their validity window")
    limit = conditions.get("NotOnOrAfter")
    return _instant(limit, "Conditions NotOnOrAfter") if limit else None


def read_attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    if assertion.find(f".//{qname(SAML, 'EncryptedAttribute')}") is not None:
        raise _reject("attributes", "encrypted attributes are not supported")
    attributes: dict[str, list[str]] = {}
    for statement in assertion.findall(qname(SAML, "AttributeStatement")):
        for attribute in statement.findall(qname(SAML, "Attribute")):
            name = attribute.get("Name")
            if not name:
                raise _reject("attributes", "an Attribute has no Name")
            values = attributes.setdefault(name, [])
            for value in attribute.findall(qname(SAML, "AttributeValue")):
                values.append(text_or_reject(value))
    return {name: tuple(values) for name, values in attributes.items()}


def peek(saml_response: str, max_bytes: int) -> tuple[str | None, str | None]:
    """Issuer and InResponseTo as posted, unverified: only to pick which upstream's checks to run."""
    try:
        root = parse_untrusted(decode_base64(saml_response, max_bytes=max_bytes))
    except UnsafeXml as exc:
        raise _reject("xml", str(exc)) from None
    issuer = root.find(ISSUER)
    if issuer is None:
        assertion = root.find(ASSERTION)
        issuer = assertion.find(ISSUER) if assertion is not None else None
    return (text_or_reject(issuer) if issuer is not None else None), root.get("InResponseTo")


def validate_response(saml_response: str, exp: Expectations, trace: Trace = _no_trace) -> ValidatedResponse:
    """Check everything; return the identity read from signed XML, or raise SamlRejected."""
    response = _read_document(saml_response, exp)
    trace("xml", "well-formed, no DOCTYPE, entities or processing instructions")
    _check_envelope(response, exp, trace)
    assertion, expired_certificate = _signed_assertion(response, exp, trace)
    if assertion.get("Version") != "2.0" or not is_xml_id(assertion.get("ID")):
        raise _reject("xml", "Assertion must have Version 2.0 and a valid XML ID")
    issue_instant = _instant(assertion.get("IssueInstant"), "Assertion IssueInstant")
    if issue_instant > exp.now + exp.skew:
        raise _reject("time", "Assertion was issued in the future", got=assertion.get("IssueInstant"))
    issuer = text_or_reject(_only_child(assertion, ISSUER, "Assertion Issuer"))
    if issuer != exp.upstream.entity_id:
        raise _reject(
            "issuer", "Assertion Issuer is not the upstream IdP", expected=exp.upstream.entity_id, got=issuer
        )
    trace("issuer", issuer)
    name_id, name_id_format, confirmation_limit = _check_subject(assertion, exp, trace)
    conditions_limit = _check_conditions(assertion, exp, trace)
    authn = assertion.findall(qname(SAML, "AuthnStatement"))
    if len(authn) != 1:
        raise _reject("authn_statement", "exactly one AuthnStatement is required", expected=1, got=len(authn))
    authn_instant = _instant(authn[0].get("AuthnInstant"), "AuthnInstant")
    session_end = authn[0].get("SessionNotOnOrAfter")
    if session_end is not None and _instant(session_end, "SessionNotOnOrAfter") <= exp.now - exp.skew:
        raise _reject("time", "the upstream session has ended", got=session_end)
    identity = Identity(
        upstream=exp.upstream_name,
        issuer=issuer,
        assertion_id=assertion.get("ID") or "",  # checked above: a valid XML ID
        name_id=name_id,
        name_id_format=name_id_format,
        attributes=read_attributes(assertion),
        authn_instant=authn_instant,
        session_index=authn[0].get("SessionIndex"),
        in_response_to=exp.request_id,
    )
    limits = [limit for limit in (confirmation_limit, conditions_limit) if limit is not None]
    return ValidatedResponse(identity, max(limits) + exp.skew, issue_instant, expired_certificate)
