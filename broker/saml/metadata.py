"""SAML metadata: read an upstream IdP's, write the broker's own (SP side and, per portal, IdP side)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from broker.config.metadata import tenant_independent_problem
from broker.keys import KeyPair, cert_body_b64, load_certificate_text
from broker.saml.xml import (
    BINDING_POST,
    BINDING_REDIRECT,
    DS,
    MD,
    NAMEID_EMAIL,
    NS,
    UnsafeXml,
    parse_instant,
    parse_untrusted,
    qname,
)


@dataclass(frozen=True)
class UpstreamIdp:
    """What the broker needs to know about an upstream IdP, whatever the source (metadata or inline)."""

    entity_id: str
    sso_url: str
    certificates: tuple[x509.Certificate, ...]
    want_authn_requests_signed: bool = False
    valid_until: datetime | None = None
    sso_binding: str = (
        BINDING_REDIRECT  # HTTP-POST when the IdP offers no Redirect endpoint (Google, OneLogin)
    )


class MetadataError(ValueError):
    """Metadata that cannot be used; the message says why."""


def parse_idp_metadata(document: bytes, *, entity_id: str | None = None) -> UpstreamIdp:
    """Read IdP metadata (Entra federation metadata, Okta, Google …). A UTF-8 BOM is tolerated; every signing
    certificate is kept, so a rollover in progress keeps working."""
    try:
        root = parse_untrusted(document.lstrip(b"\xef\xbb\xbf"))
    except UnsafeXml as exc:
        raise MetadataError(f"metadata is not acceptable XML: {exc}") from exc
    if root.tag == qname(MD, "EntitiesDescriptor"):
        candidates = root.findall(f".//{qname(MD, 'EntityDescriptor')}")
        if entity_id:
            candidates = [c for c in candidates if c.get("entityID") == entity_id]
        if len(candidates) != 1:
            raise MetadataError("metadata holds several entities: set entity_id to choose one")
        descriptor = candidates[0]
    elif root.tag == qname(MD, "EntityDescriptor"):
        descriptor = root
    else:
        raise MetadataError(f"not SAML metadata (root element {etree.QName(root).localname})")
    idp = descriptor.find(qname(MD, "IDPSSODescriptor"))
    if idp is None:
        raise MetadataError("metadata has no IDPSSODescriptor")
    entity = descriptor.get("entityID") or ""
    problem = tenant_independent_problem(entity)
    if problem:
        raise MetadataError(problem)
    sso_url, sso_binding = _sso_endpoint(idp)
    certs = []
    for key_descriptor in idp.findall(qname(MD, "KeyDescriptor")):
        if key_descriptor.get("use", "signing") != "signing":
            continue
        for node in key_descriptor.iterfind(".//ds:X509Certificate", NS):
            try:
                certs.append(load_certificate_text(node.text or ""))
            except ValueError as exc:
                raise MetadataError(f"a signing certificate in metadata cannot be read: {exc}") from exc
    if not certs:
        raise MetadataError("metadata lists no signing certificate")
    valid_until = None
    for holder in (descriptor, root):
        if holder.get("validUntil"):
            try:
                valid_until = parse_instant(holder.get("validUntil"), "validUntil")
            except UnsafeXml as exc:
                raise MetadataError(str(exc)) from exc
            break
    return UpstreamIdp(
        entity_id=entity,
        sso_url=sso_url,
        certificates=tuple(certs),
        want_authn_requests_signed=idp.get("WantAuthnRequestsSigned") in ("true", "1"),
        valid_until=valid_until,
        sso_binding=sso_binding,
    )


def _sso_endpoint(idp: etree._Element) -> tuple[str, str]:
    """The SingleSignOnService to send AuthnRequests to: HTTP-Redirect when offered (a plain redirect, no page
    in between), else HTTP-POST (some Google and OneLogin metadata list only that)."""
    services = idp.findall(qname(MD, "SingleSignOnService"))
    for binding in (BINDING_REDIRECT, BINDING_POST):
        for service in services:
            location = (service.get("Location") or "").strip()
            if service.get("Binding") == binding and location:
                if not location.startswith(("https://", "http://")):
                    raise MetadataError(
                        f"SingleSignOnService Location is not an http(s) URL: {location[:80]!r}"
                    )
                return location, binding
    raise MetadataError("metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")


def _key_descriptor(parent: etree._Element, certificate: KeyPair | x509.Certificate) -> None:
    body = certificate.cert_b64 if isinstance(certificate, KeyPair) else cert_body_b64(certificate)
    key_descriptor = etree.SubElement(parent, qname(MD, "KeyDescriptor"), use="signing")
    key_info = etree.SubElement(key_descriptor, qname(DS, "KeyInfo"))
    x509_data = etree.SubElement(key_info, qname(DS, "X509Data"))
    etree.SubElement(x509_data, qname(DS, "X509Certificate")).text = body


def sp_metadata(entity_id: str, acs_url: str, key_pair: KeyPair, *, sign_requests: bool) -> bytes:
    """The broker as an SP, for registering it in Entra / Okta / Google."""
    root = etree.Element(qname(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS}, entityID=entity_id)
    sp = etree.SubElement(
        root,
        qname(MD, "SPSSODescriptor"),
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
        AuthnRequestsSigned="true" if sign_requests else "false",
        WantAssertionsSigned="true",
    )
    _key_descriptor(sp, key_pair)
    etree.SubElement(sp, qname(MD, "NameIDFormat")).text = NAMEID_EMAIL
    etree.SubElement(
        sp,
        qname(MD, "AssertionConsumerService"),
        Binding=BINDING_POST,
        Location=acs_url,
        index="0",
        isDefault="true",
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def idp_metadata(entity_id: str, sso_url: str, key_pairs: list[KeyPair | x509.Certificate]) -> bytes:
    """The broker as the IdP of one portal; every published certificate (current and next) is listed."""
    root = etree.Element(qname(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS}, entityID=entity_id)
    idp = etree.SubElement(
        root, qname(MD, "IDPSSODescriptor"), protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"
    )
    for key_pair in key_pairs:
        _key_descriptor(idp, key_pair)
    etree.SubElement(idp, qname(MD, "NameIDFormat")).text = NAMEID_EMAIL
    etree.SubElement(idp, qname(MD, "SingleSignOnService"), Binding=BINDING_REDIRECT, Location=sso_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def is_expired(upstream: UpstreamIdp, now: datetime | None = None) -> bool:
    return upstream.valid_until is not None and upstream.valid_until <= (now or datetime.now(UTC))
