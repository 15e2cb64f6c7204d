"""In-process XML signatures (signxml on lxml + cryptography): sign for portals, verify upstream responses.

No external signing process is started. Keys arrive already loaded (see broker.keys), so the per-call cost
is the RSA operation plus canonicalisation.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
    SignXMLException,
)
from signxml.util import strip_pem_header

from broker.keys import KeyPair
from broker.saml.xml import DS, is_xml_id, qname

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value

# What an outgoing signature may use; LearnUpon's guides still ask for SHA-1, so it is offered per portal.
OUTGOING_ALGORITHMS: dict[str, tuple[SignatureMethod, DigestAlgorithm]] = {
    "rsa-sha256": (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256),
    "rsa-sha1": (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
}

STRONG_SIGNATURE_METHODS = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
)
STRONG_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


class SignatureRejected(ValueError):
    """The signature is absent, malformed, uses a forbidden construct, or does not verify."""


class _OutgoingSigner(XMLSigner):
    """signxml refuses SHA-1 by default; the outgoing leg may need it for LearnUpon, so the check is lifted
    here only. Verification of upstream responses never uses this class.

    Per-signature costs are trimmed (same output, byte for byte): signxml copies the element twice by
    serialising and re-parsing it, where a deep copy of a tree we built ourselves is the same tree for a third
    of the cost; it PEM-encodes the certificate for KeyInfo, and builds the same QNames, on every call.
    """

    def check_deprecated_methods(self) -> None:
        return None

    def _ds_tag(self, tag):
        # The same dozen QNames on every signature; `namespaces` is never changed on our signers.
        qnames = self.__dict__.setdefault("_qnames", {})
        found = qnames.get(tag)
        if found is None:
            found = qnames[tag] = super()._ds_tag(tag)
        return found

    def get_root(self, data):
        if isinstance(data, etree._Element) and data.getparent() is None:
            # A root element carries every namespace it uses, so a deep copy is exactly the re-parsed copy.
            return copy.deepcopy(data)
        return super().get_root(data)

    def _add_key_info(self, sig_root, signing_settings) -> None:
        chain = signing_settings.cert_chain
        if (
            signing_settings.key_info is not None
            or not chain
            or getattr(signing_settings, "always_add_key_value", False)
            or not all(isinstance(cert, x509.Certificate) for cert in chain)
        ):
            return super()._add_key_info(sig_root, signing_settings)
        key_info = etree.SubElement(sig_root, qname(DS, "KeyInfo"))
        x509_data = etree.SubElement(key_info, qname(DS, "X509Data"))
        for cert in chain:
            etree.SubElement(x509_data, qname(DS, "X509Certificate")).text = _certificate_text(cert)
        return None


@lru_cache(maxsize=64)
def _certificate_text(cert: x509.Certificate) -> str:
    """The certificate's PEM body, exactly as signxml writes it into X509Certificate."""
    return strip_pem_header(cert.public_bytes(serialization.Encoding.PEM))


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

    def _check_cert_validity(self, cert, *args, **kwargs) -> None:
        # signxml formats the certificate's description (subject as RFC 4514 text) before comparing dates;
        # compare first, and let signxml build its message only for a certificate outside its validity.
        now = self._get_cert_verification_time()
        if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return
        super()._check_cert_validity(cert, *args, **kwargs)


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


_SIGNERS: dict[str, _OutgoingSigner] = {}


def _signer(algorithm: str) -> _OutgoingSigner:
    signer = _SIGNERS.get(algorithm)
    if signer is None:
        method, digest = OUTGOING_ALGORITHMS[algorithm]
        signer = _OutgoingSigner(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=EXC_C14N)
        _SIGNERS[algorithm] = signer
    return signer


def signature_placeholder() -> etree._Element:
    """Insert where the ds:Signature must go (SAML: right after Issuer); `sign_enveloped` fills it."""
    return etree.Element(qname(DS, "Signature"), Id="placeholder", nsmap={"ds": DS})


def sign_enveloped(
    element: etree._Element, key_pair: KeyPair, algorithm: str = "rsa-sha256"
) -> etree._Element:
    """Return a signed copy of `element` (enveloped signature, Reference to its ID, exc-c14n)."""
    return _signer(algorithm).sign(element, key=key_pair.private_key, cert=[key_pair.certificate])


@dataclass(frozen=True)
class VerifiedElement:
    """The element as covered by the signature (re-parsed from canonical form, comments gone)."""

    element: etree._Element
    certificate: x509.Certificate


def _check_signature_shape(signature: etree._Element, element_id: str) -> None:
    """Structural rules before any cryptography: one SignedInfo, one Reference to the enclosing element's ID,
    only enveloped + exc-c14n transforms, no ds:Object. Anything else is how wrapping attacks begin."""
    children = [c for c in signature if isinstance(c.tag, str)]
    allowed = [qname(DS, "SignedInfo"), qname(DS, "SignatureValue"), qname(DS, "KeyInfo")]
    tags = [c.tag for c in children]
    if tags[:2] != allowed[:2] or any(t != allowed[2] for t in tags[2:]) or len(tags) > 3:
        raise SignatureRejected("signature must hold SignedInfo, SignatureValue and at most one KeyInfo")
    if not (children[1].text or "").strip():
        raise SignatureRejected("SignatureValue is empty")
    signed_info = children[0]
    c14n = signed_info.find(qname(DS, "CanonicalizationMethod"))
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise SignatureRejected("SignedInfo canonicalisation must be exclusive c14n without comments")
    references = signed_info.findall(qname(DS, "Reference"))
    if len(references) != 1:
        raise SignatureRejected(f"signature must have exactly one Reference, found {len(references)}")
    if not (references[0].findtext(qname(DS, "DigestValue")) or "").strip():
        raise SignatureRejected("DigestValue is empty")
    uri = references[0].get("URI")
    if uri != f"#{element_id}":
        raise SignatureRejected(f"Reference URI {uri!r} does not point at the signed element #{element_id}")
    transforms = references[0].findall(f"{qname(DS, 'Transforms')}/{qname(DS, 'Transform')}")
    for transform in transforms:
        if transform.get("Algorithm") not in (ENVELOPED, EXC_C14N) or len(transform):
            raise SignatureRejected(f"transform {transform.get('Algorithm')!r} is not allowed")


def _certificate_in_keyinfo(signature: etree._Element) -> bytes | None:
    node = signature.find(f"{qname(DS, 'KeyInfo')}/{qname(DS, 'X509Data')}/{qname(DS, 'X509Certificate')}")
    if node is None or not node.text:
        return None
    try:
        return base64.b64decode("".join(node.text.split()))
    except ValueError:
        return None


def verify_enveloped(
    element: etree._Element,
    trusted_certs: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
) -> VerifiedElement:
    """Verify the ds:Signature that is a direct child of `element` and covers exactly `element`.

    Keys come only from `trusted_certs` (the issuer's metadata); a certificate in KeyInfo is used only to pick
    which trusted certificate to try first (rollover), never trusted by itself.
    """
    element_id = element.get("ID")
    if element_id is None or not is_xml_id(element_id):
        raise SignatureRejected(f"signed element's ID {element_id!r} is not a valid XML ID")
    signatures = element.findall(qname(DS, "Signature"))
    if len(signatures) != 1:
        raise SignatureRejected(f"expected exactly one signature on the element, found {len(signatures)}")
    _check_signature_shape(signatures[0], element_id)

    config = _VERIFY_CONFIGS[allow_sha1]
    candidates = list(trusted_certs)
    if len(candidates) > 1:
        embedded = _certificate_in_keyinfo(signatures[0])
        candidates.sort(key=lambda c: _certificate_der(c) != embedded)
    if not candidates:
        raise SignatureRejected("no signing certificate is configured for this issuer")
    last_error: Exception | None = None
    for cert in candidates:
        try:
            # id_attribute="ID": the Reference must name this element's ID (checked above), so one XPath over
            # ID attributes finds it; signxml still refuses a second element carrying that ID as ambiguous.
            result = _UpstreamVerifier().verify(
                element, x509_cert=cert, expect_config=config, id_attribute="ID"
            )
        except (InvalidSignature, InvalidDigest) as exc:
            last_error = exc
            continue
        except InvalidCertificate as exc:
            last_error = exc
            continue
        except (InvalidInput, SignXMLException, etree.LxmlError, ValueError, TypeError) as exc:
            # TypeError too: signxml assumes well-formed signatures in places (e.g. base64 of a missing text)
            raise SignatureRejected(f"signature not acceptable: {exc}") from exc
        if isinstance(result, list):  # only with expect_references > 1, which the config never sets
            raise SignatureRejected("more than one signed reference")
        signed = result.signed_xml
        if signed is None or signed.tag != element.tag or signed.get("ID") != element_id:
            raise SignatureRejected("signature does not cover the element it is attached to")
        return VerifiedElement(signed, cert)
    raise SignatureRejected(
        f"signature does not verify with any certificate in the issuer's metadata: {last_error}"
    )
