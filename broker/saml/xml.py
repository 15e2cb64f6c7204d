"""Namespaces, a hardened parser, and readers that never let a comment truncate a value."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any, cast

from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS, "md": MD}

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
AUTHN_PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


class UnsafeXml(ValueError):
    """The input is not a document we are willing to parse."""


# One parser, reused: no DTD loading, no entity expansion, no network, no huge trees, comments kept visible
# (so that readers can refuse split text), processing instructions kept (so that we can refuse them).
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    collect_ids=False,
)


_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY|ATTLIST|ELEMENT)", re.IGNORECASE)
_STRING_VALUE = etree.XPath("string()")


def parse_untrusted(document: bytes) -> etree._Element:
    """Parse bytes that came from outside. DOCTYPEs, entities and processing instructions are refused."""
    # A DOCTYPE is refused before the parser sees it: internal subsets carry entity bombs and ATTLIST defaults.
    head = document.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _DECLARATION.search(document):
        raise UnsafeXml("DOCTYPE or ENTITY declarations are not allowed")
    if not head.startswith(b"<"):
        raise UnsafeXml("not an XML document")
    try:
        root = etree.fromstring(document, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"malformed XML: {exc}") from exc
    tree = root.getroottree()
    docinfo: Any = tree.docinfo  # lxml-stubs type it as a union with Any
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXml("DOCTYPE declarations are not allowed")
    for node in root.iter(etree.PI, etree.Entity):
        raise UnsafeXml(
            f"{'processing instruction' if isinstance(node, etree._ProcessingInstruction) else 'entity'}"
            " not allowed"
        )
    for siblings in (root.itersiblings(preceding=True), root.itersiblings()):
        for sibling in siblings:
            if isinstance(sibling, etree._ProcessingInstruction):
                raise UnsafeXml("processing instruction not allowed")
    return root


# xs:ID values are NCNames; the broker takes the ASCII subset every IdP uses (e.g. "_" + hex, "id-…").
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,255}$")


def is_xml_id(value: str | None) -> bool:
    return value is not None and bool(_XML_ID.match(value))


def decode_base64(value: str, *, max_bytes: int) -> bytes:
    """Strict base64 (whitespace tolerated, as IdPs wrap lines), with a size cap applied before decoding."""
    compact = "".join(value.split())
    if len(compact) > (max_bytes * 4) // 3 + 4:
        raise UnsafeXml(f"message larger than {max_bytes} bytes")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnsafeXml("malformed base64") from exc


def text_of(element: etree._Element) -> str:
    """The whole text of a leaf element. Child elements are refused rather than flattened."""
    if not len(element):
        # No child nodes at all (comments and PIs are children too): the text is the one text node.
        return element.text or ""
    for child in element:
        if not isinstance(child, etree._Comment):
            raise UnsafeXml(f"unexpected child element in {etree.QName(element).localname}")
    # string() concatenates every text node, so `a@b.com<!---->.evil.com` reads in full, never as `a@b.com`.
    return cast(str, _STRING_VALUE(element))  # string() always gives a string


def parse_instant(value: str | None, what: str) -> datetime:
    """An xs:dateTime in UTC; anything else is refused (no silent fallback to 'now')."""
    if not value:
        raise UnsafeXml(f"{what} is missing")
    text = value.strip()
    if not text.endswith("Z") and "+" not in text[10:] and "-" not in text[10:]:
        raise UnsafeXml(f"{what} has no time zone: {value!r}")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnsafeXml(f"{what} is not a valid dateTime: {value!r}") from exc
    if parsed.tzinfo is None or "T" not in text:
        raise UnsafeXml(f"{what} is not a valid dateTime: {value!r}")
    return parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def qname(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"
