"""The AuthnRequest the broker sends upstream: HTTP-Redirect when the IdP offers it, else HTTP-POST."""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from broker.keys import KeyPair
from broker.saml.xml import BINDING_POST, BINDING_REDIRECT, SAML, SAMLP, format_instant, qname
from broker.saml.xmldsig import sign_enveloped, signature_placeholder

SIG_ALG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass(frozen=True)
class UpstreamRequest:
    """How the browser carries the AuthnRequest to the IdP: a redirect to `url`, or a form POSTed to `url`."""

    binding: str
    url: str
    request_xml: bytes  # as sent (signed, for POST, when the IdP wants signed requests); for the flow tester
    fields: dict[str, str] = field(default_factory=dict)  # HTTP-POST only: SAMLRequest, RelayState


def new_request_id() -> str:
    # Entra refuses IDs that start with a digit; a leading underscore keeps it an NCName.
    return "_" + secrets.token_hex(20)


def build_authn_request(
    *, request_id: str, issuer: str, destination: str, acs_url: str, now: datetime, name_id_format: str | None
) -> bytes:
    root = etree.Element(
        qname(SAMLP, "AuthnRequest"),
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=request_id,
        Version="2.0",
        IssueInstant=format_instant(now),
        Destination=destination,
        AssertionConsumerServiceURL=acs_url,
        ProtocolBinding=BINDING_POST,
    )
    etree.SubElement(root, qname(SAML, "Issuer")).text = issuer
    if name_id_format:
        etree.SubElement(root, qname(SAMLP, "NameIDPolicy"), Format=name_id_format, AllowCreate="true")
    return etree.tostring(root)


def redirect_url(
    sso_url: str,
    request_xml: bytes,
    relay_state: str,
    *,
    signing_key: KeyPair | None = None,
    extra_params: dict[str, str] | None = None,
) -> str:
    """HTTP-Redirect binding: DEFLATE, base64, URL-encode; signed over the query string when a key is given."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(request_xml) + compressor.flush()).decode("ascii")
    params = [("SAMLRequest", encoded), ("RelayState", relay_state)]
    if signing_key is not None:
        params.append(("SigAlg", SIG_ALG_RSA_SHA256))
        signed_part = "&".join(f"{k}={quote(v, safe='')}" for k, v in params).encode("ascii")
        signature = signing_key.private_key.sign(signed_part, padding.PKCS1v15(), hashes.SHA256())
        params.append(("Signature", base64.b64encode(signature).decode("ascii")))
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
    if extra_params:
        query += "&" + urlencode(extra_params)
    separator = "&" if "?" in sso_url else "?"
    return f"{sso_url}{separator}{query}"


def decode_redirect_request(saml_request: str, *, max_bytes: int = 64 * 1024) -> bytes:
    """Inverse of the encoding above (used by the demo's test IdP)."""
    raw = base64.b64decode(saml_request, validate=True)
    decompressor = zlib.decompressobj(-15)
    data = decompressor.decompress(raw, max_bytes)
    if decompressor.unconsumed_tail:
        raise ValueError("AuthnRequest too large")
    return data


def post_fields(
    request_xml: bytes, relay_state: str, *, signing_key: KeyPair | None = None
) -> tuple[bytes, dict]:
    """HTTP-POST binding: base64 of the whole request (no DEFLATE); signed inside the XML, since a form has no
    query string to sign. Returns the request as sent and the form fields."""
    if signing_key is not None:
        root = etree.fromstring(request_xml)  # noqa: S320 (our own request, built just now)
        root.insert(1, signature_placeholder())  # right after Issuer, where SAML's schema wants it
        request_xml = etree.tostring(sign_enveloped(root, signing_key))
    return request_xml, {
        "SAMLRequest": base64.b64encode(request_xml).decode("ascii"),
        "RelayState": relay_state,
    }


def upstream_request(
    sso_url: str,
    binding: str,
    request_xml: bytes,
    relay_state: str,
    *,
    signing_key: KeyPair | None = None,
    extra_params: dict[str, str] | None = None,
) -> UpstreamRequest:
    """The AuthnRequest over the IdP's binding (Redirect preferred; POST when metadata offers only that)."""
    if binding == BINDING_REDIRECT:
        url = redirect_url(
            sso_url, request_xml, relay_state, signing_key=signing_key, extra_params=extra_params
        )
        return UpstreamRequest(BINDING_REDIRECT, url, request_xml)
    sent, fields = post_fields(request_xml, relay_state, signing_key=signing_key)
    if extra_params:
        separator = "&" if "?" in sso_url else "?"
        sso_url = f"{sso_url}{separator}{urlencode(extra_params)}"
    return UpstreamRequest(BINDING_POST, sso_url, sent, fields)


def decode_post_request(saml_request: str, *, max_bytes: int = 64 * 1024) -> bytes:
    """Inverse of the HTTP-POST encoding (used by the demo's test IdP and tests)."""
    if len(saml_request) > max_bytes * 4 // 3 + 4:
        raise ValueError("AuthnRequest too large")
    return base64.b64decode("".join(saml_request.split()), validate=True)
