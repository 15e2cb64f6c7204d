"""Verifying upstream signatures: keys only from the issuer's metadata, every check signxml's own after our
shape check (broker.saml.xmldsig.shape)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
    SignXMLException,
)

from broker.saml.xml import DS, is_xml_id, qname
from broker.saml.xmldsig.shape import (
    INCLUSIVE_NAMESPACES,
    CertificateExpired,
    Sha1Refused,
    SignatureRejected,
    _certificate_in_keyinfo,
    _check_signature_shape,
    _uses_sha1,
)

STRONG_SIGNATURE_METHODS = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
)
STRONG_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


@lru_cache(maxsize=64)
def _certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class _UpstreamVerifier(XMLVerifier):
    """signxml's verifier, minus two costs that check nothing: `verify()` serialises and re-parses the element
    it is given before reading it, although it never modifies that tree (it copies it again before removing the
    signature for the digest, and returns only what it re-parsed from canonical form); and it describes the
    certificate in text before checking its dates. Every check is still signxml's own."""

    def get_root(self, data):
        if isinstance(data, etree._Element):
            return data
        return super().get_root(data)

    def __init__(self, now: datetime, enforce_expiry: bool) -> None:
        super().__init__()
        self._now = now.astimezone(UTC)
        self._enforce_expiry = enforce_expiry
        self.used_expired_certificate = False

    def _get_cert_verification_time(self) -> datetime:
        # The broker's clock (pinned in tests that replay documents at their issue time), not the wall clock.
        return self._now

    def validate_schema(self, signature) -> None:
        # The XML-DSig schema's strict wildcard under CanonicalizationMethod does not know ec:InclusiveNamespaces
        # (the Transform's wildcard is lax); its shape was checked already, so the rest is validated without it.
        method = signature.find(f"{qname(DS, 'SignedInfo')}/{qname(DS, 'CanonicalizationMethod')}")
        if method is not None and method.find(INCLUSIVE_NAMESPACES) is not None:
            signature = copy.deepcopy(signature)
            method = signature.find(f"{qname(DS, 'SignedInfo')}/{qname(DS, 'CanonicalizationMethod')}")
            method.remove(method.find(INCLUSIVE_NAMESPACES))
        super().validate_schema(signature)

    def _get_inclusive_ns_prefixes(self, transform_node):
        # The PrefixList is whitespace-separated (exc-c14n section 3); signxml splits on single spaces, and an
        # empty token would make libxml2 render the default namespace. The shape check vetted each token.
        node = transform_node.find(INCLUSIVE_NAMESPACES)
        return None if node is None else node.get("PrefixList", "").split()

    def _check_cert_validity(self, cert, *args, **kwargs) -> None:
        # Compared here rather than by signxml: its messages suggest library calls to the reader, and an expired
        # certificate from metadata is accepted unless the upstream enforces expiry (metadata is the anchor).
        now = self._now
        if now < cert.not_valid_before_utc:
            raise InvalidCertificate(
                f"the signing certificate is not valid before {cert.not_valid_before_utc.isoformat()}"
            )
        if now > cert.not_valid_after_utc:
            if self._enforce_expiry:
                raise CertificateExpired(
                    f"the signing certificate expired on {cert.not_valid_after_utc.isoformat()}"
                )
            self.used_expired_certificate = True


def _verify_config(allow_sha1: bool) -> SignatureConfiguration:
    methods, digests = STRONG_SIGNATURE_METHODS, STRONG_DIGESTS
    if allow_sha1:
        methods, digests = methods | {SignatureMethod.RSA_SHA1}, digests | {DigestAlgorithm.SHA1}
    return SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=methods,
        digest_algorithms=digests,
    )


# Built once: the configuration depends only on whether the upstream may use SHA-1.
_VERIFY_CONFIGS = {allow_sha1: _verify_config(allow_sha1) for allow_sha1 in (False, True)}


@dataclass(frozen=True)
class VerifiedElement:
    """The element as covered by the signature (re-parsed from canonical form, comments gone)."""

    element: etree._Element
    certificate: x509.Certificate
    certificate_expired: bool = False  # accepted past its notAfter (metadata is the trust anchor): warn


def verify_enveloped(
    element: etree._Element,
    trusted_certs: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
    now: datetime | None = None,
    enforce_certificate_expiry: bool = False,
) -> VerifiedElement:
    """Verify the ds:Signature that is a direct child of `element` and covers exactly `element`.

    Keys come only from `trusted_certs` (the issuer's metadata); a certificate in KeyInfo is used only to pick
    which trusted certificate to try first (rollover), never trusted by itself. A trusted certificate past its
    notAfter still verifies unless `enforce_certificate_expiry`; the result says so, for the caller to warn.
    """
    element_id = element.get("ID")
    if element_id is None or not is_xml_id(element_id):
        raise SignatureRejected(f"signed element's ID {element_id!r} is not a valid XML ID")
    signatures = element.findall(qname(DS, "Signature"))
    if len(signatures) != 1:
        raise SignatureRejected(f"expected exactly one signature on the element, found {len(signatures)}")
    _check_signature_shape(signatures[0], element_id)
    if not allow_sha1 and _uses_sha1(signatures[0]):
        raise Sha1Refused("the signature uses SHA-1")

    config = _VERIFY_CONFIGS[allow_sha1]
    candidates = list(trusted_certs)
    if len(candidates) > 1:
        embedded = _certificate_in_keyinfo(signatures[0])
        candidates.sort(key=lambda c: _certificate_der(c) != embedded)
    if not candidates:
        raise SignatureRejected("no signing certificate is configured for this issuer")
    moment = now or datetime.now(UTC)
    last_error: Exception | None = None
    for cert in candidates:
        verifier = _UpstreamVerifier(moment, enforce_certificate_expiry)
        try:
            # id_attribute="ID": the Reference must name this element's ID (checked above), so one XPath over
            # ID attributes finds it; signxml still refuses a second element carrying that ID as ambiguous.
            result = verifier.verify(element, x509_cert=cert, expect_config=config, id_attribute="ID")
        except (InvalidSignature, InvalidDigest, InvalidCertificate, CertificateExpired) as exc:
            last_error = exc
            continue
        except (InvalidInput, SignXMLException, etree.LxmlError, ValueError, TypeError) as exc:
            # TypeError too: signxml assumes well-formed signatures in places (e.g. base64 of a missing text)
            raise SignatureRejected(f"signature not acceptable: {_plain(exc)}") from exc
        if isinstance(result, list):  # only with expect_references > 1, which the config never sets
            raise SignatureRejected("more than one signed reference")
        signed = result.signed_xml
        if signed is None or signed.tag != element.tag or signed.get("ID") != element_id:
            raise SignatureRejected("signature does not cover the element it is attached to")
        return VerifiedElement(signed, cert, verifier.used_expired_certificate)
    if isinstance(last_error, CertificateExpired):
        raise last_error
    raise SignatureRejected(
        f"signature does not verify with any certificate in the issuer's metadata: {_plain(last_error)}"
    )


# signxml's messages sometimes end with advice for its own callers ("Use verify(...)"): not for our logs.
_LIBRARY_ADVICE = re.compile(r"\s*(?:Use|Pass) [A-Za-z_.]+\(.*$", re.DOTALL)


def _plain(exc: Exception | None) -> str:
    return _LIBRARY_ADVICE.sub("", str(exc)) if exc is not None else "no certificate tried"
