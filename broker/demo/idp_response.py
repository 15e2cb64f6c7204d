"""Build genuinely signed upstream responses the way Entra ID (or Okta) shapes them.

Used by the demo's test IdP, and by tests that need a valid baseline to mutate one defect at a time.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from broker.keys import KeyPair
from broker.saml.xml import BEARER, NAMEID_EMAIL, SAML, SAMLP, STATUS_SUCCESS, XS, XSI, format_instant, qname
from broker.saml.xmldsig import sign_enveloped, signature_placeholder

ENTRA_ATTR = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_ATTR = "http://schemas.microsoft.com/identity/claims/"
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
ENTRA_GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"


@dataclass
class DemoUser:
    email: str
    first_name: str
    last_name: str
    object_id: str
    groups: list[str] = field(default_factory=list)
    department: str = ""
    # Entra's "overage": past 150 groups it sends a groups.link claim instead of the groups.
    overage: bool = False

    def entra_attributes(self, tenant_id: str) -> dict[str, list[str]]:
        attributes = {
            MS_ATTR + "tenantid": [tenant_id],
            MS_ATTR + "objectidentifier": [self.object_id],
            MS_ATTR + "displayname": [f"{self.first_name} {self.last_name}"],
            MS_ATTR + "identityprovider": [f"https://sts.windows.net/{tenant_id}/"],
            "http://schemas.microsoft.com/claims/authnmethodsreferences": [
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            ],
            ENTRA_ATTR + "givenname": [self.first_name],
            ENTRA_ATTR + "surname": [self.last_name],
            ENTRA_ATTR + "emailaddress": [self.email],
            ENTRA_ATTR + "name": [self.email],
        }
        if self.department:
            attributes[ENTRA_ATTR + "department"] = [self.department]
        if self.overage:
            attributes[ENTRA_GROUPS_LINK] = [
                f"https://graph.windows.net/{tenant_id}/users/{self.object_id}/getMemberObjects"
            ]
        elif self.groups:
            attributes[ENTRA_GROUPS] = list(self.groups)
        return attributes

    def okta_attributes(self) -> dict[str, list[str]]:
        # The names Okta admins commonly type in the app's attribute statements (matched without case).
        attributes = {"Email": [self.email], "FirstName": [self.first_name], "LastName": [self.last_name]}
        if self.groups:
            attributes["groups"] = list(self.groups)
        return attributes


@dataclass
class ResponseSpec:
    """Every field of an upstream response a test may want to change; defaults make a valid one."""

    issuer: str
    destination: str
    audience: str
    name_id: str
    attributes: dict[str, list[str]]
    in_response_to: str | None
    now: datetime
    recipient: str | None = None  # defaults to destination
    # "entra" (default namespaces, no types) or "okta" (saml2: prefixes, xs:string values, and signatures whose
    # exc-c14n transform carries <ec:InclusiveNamespaces PrefixList="xs"/>, as real Okta signs)
    shape: str = "entra"
    sign: str = "assertion"  # "assertion", "response", "both" or "none"
    algorithm: str = "rsa-sha256"
    conditions_lifetime: timedelta = timedelta(minutes=60)
    confirmation_lifetime: timedelta = timedelta(minutes=5)
    status: str = STATUS_SUCCESS
    assertion_id: str = field(default_factory=lambda: "_" + secrets.token_hex(16))
    response_id: str = field(default_factory=lambda: "_" + secrets.token_hex(16))
    # Test hooks: change the assertion / response before they are signed (a defect the signature then covers).
    edit_assertion: Callable[[etree._Element], None] | None = None
    edit_response: Callable[[etree._Element], None] | None = None


def _nsmaps(shape: str) -> tuple[dict, dict, str]:
    if shape == "okta":
        return {"saml2p": SAMLP, "xs": XS}, {"saml2": SAML, "xs": XS, "xsi": XSI}, "okta"
    return {"samlp": SAMLP}, {None: SAML}, "entra"


def build_assertion(spec: ResponseSpec) -> etree._Element:
    _, assertion_ns, shape = _nsmaps(spec.shape)

    def sub(parent: etree._Element, local: str, text: str | None = None, **attrs: str) -> etree._Element:
        element = etree.SubElement(parent, qname(SAML, local), attrs)
        if text is not None:
            element.text = text
        return element

    issue = spec.now
    assertion = etree.Element(
        qname(SAML, "Assertion"), nsmap=assertion_ns, ID=spec.assertion_id, IssueInstant=format_instant(issue),
        Version="2.0",
    )  # fmt: skip
    sub(assertion, "Issuer", spec.issuer)
    if spec.sign in ("assertion", "both"):
        assertion.append(signature_placeholder())
    subject = sub(assertion, "Subject")
    sub(subject, "NameID", spec.name_id, Format=NAMEID_EMAIL)
    confirmation = sub(subject, "SubjectConfirmation", Method=BEARER)
    data_attrs = {
        "NotOnOrAfter": format_instant(issue + spec.confirmation_lifetime),
        "Recipient": spec.recipient or spec.destination,
    }
    if spec.in_response_to:
        data_attrs = {"InResponseTo": spec.in_response_to, **data_attrs}
    sub(confirmation, "SubjectConfirmationData", **data_attrs)
    conditions = sub(
        assertion,
        "Conditions",
        NotBefore=format_instant(issue - timedelta(minutes=5)),
        NotOnOrAfter=format_instant(issue + spec.conditions_lifetime),
    )
    restriction = sub(conditions, "AudienceRestriction")
    sub(restriction, "Audience", spec.audience)
    if spec.attributes:
        statement = sub(assertion, "AttributeStatement")
        for name, values in spec.attributes.items():
            attribute = sub(statement, "Attribute", Name=name)
            if shape == "okta":
                attribute.set("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified")
            for value in values:
                element = sub(attribute, "AttributeValue", value)
                if shape == "okta":
                    element.set(qname(XSI, "type"), "xs:string")
    authn = sub(
        assertion, "AuthnStatement", AuthnInstant=format_instant(issue), SessionIndex=spec.assertion_id
    )
    context = sub(authn, "AuthnContext")
    sub(context, "AuthnContextClassRef", "urn:oasis:names:tc:SAML:2.0:ac:classes:Password")
    return assertion


def build_response(spec: ResponseSpec, key_pair: KeyPair) -> bytes:
    """A complete, signed Response as bytes (as the IdP would POST it, before base64)."""
    protocol_ns, _, _ = _nsmaps(spec.shape)
    assertion = build_assertion(spec)
    if spec.edit_assertion is not None:
        spec.edit_assertion(assertion)
    prefix_list = ("xs",) if spec.shape == "okta" else ()
    if spec.sign in ("assertion", "both"):
        assertion = sign_enveloped(assertion, key_pair, spec.algorithm, prefix_list=prefix_list)
    attrs = {"ID": spec.response_id, "Version": "2.0", "IssueInstant": format_instant(spec.now),
             "Destination": spec.destination}  # fmt: skip
    if spec.in_response_to:
        attrs["InResponseTo"] = spec.in_response_to
    response = etree.Element(qname(SAMLP, "Response"), attrs, nsmap=protocol_ns)
    issuer_ns: Any = {"saml2": SAML} if spec.shape == "okta" else {None: SAML}
    issuer = etree.SubElement(response, qname(SAML, "Issuer"), nsmap=issuer_ns)
    issuer.text = spec.issuer
    if spec.shape == "okta":
        issuer.set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")
    if spec.sign in ("response", "both"):
        response.append(signature_placeholder())
    status = etree.SubElement(response, qname(SAMLP, "Status"))
    etree.SubElement(status, qname(SAMLP, "StatusCode"), Value=spec.status)
    response.append(assertion)
    if spec.edit_response is not None:
        spec.edit_response(response)
    if spec.sign in ("response", "both"):
        response = sign_enveloped(response, key_pair, spec.algorithm, prefix_list=prefix_list)
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")


def encode(document: bytes) -> str:
    return base64.b64encode(document).decode("ascii")
