"""In-process XML signatures (signxml on lxml + cryptography): sign for portals, verify upstream responses.

No external signing process is started. Keys arrive already loaded (see broker.keys), so the per-call cost
is the RSA operation plus canonicalisation.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    SignatureReference,
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
# exc-c14n's one parameter (Okta, Keycloak, goxmldsig, Shibboleth): namespaces to render as in inclusive c14n.
INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"
SHA1_METHODS = frozenset({SignatureMethod.RSA_SHA1.value, DigestAlgorithm.SHA1.value})
# A PrefixList token: an NCName prefix, or #default for the default namespace (exc-c14n spec, section 3).
_PREFIX = re.compile(r"^(?:#default|[A-Za-z_][A-Za-z0-9_.-]*)$")

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


class Sha1Refused(SignatureRejected):
    """The signature uses SHA-1, which this upstream is not allowed to use (the caller names the setting)."""


class CertificateExpired(SignatureRejected):
    """The only certificate that verifies has expired, and this upstream enforces certificate expiry."""


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

    def _build_transforms_for_reference(
        self, *, transforms_node, reference, exclude_c14n_transform_element=True
    ):
        # signxml 5.2 digests an enveloped reference with its inclusive_ns_prefixes but leaves the
        # InclusiveNamespaces element out of the transform, so no verifier could reproduce the digest.
        super()._build_transforms_for_reference(
            transforms_node=transforms_node,
            reference=reference,
            exclude_c14n_transform_element=exclude_c14n_transform_element,
        )
        c14n = transforms_node.find(f"{qname(DS, 'Transform')}[@Algorithm='{EXC_C14N}']")
        if reference.inclusive_ns_prefixes and c14n is not None and c14n.find(INCLUSIVE_NAMESPACES) is None:
            etree.SubElement(
                c14n,
                INCLUSIVE_NAMESPACES,
                nsmap={"ec": EXC_C14N},
                PrefixList=" ".join(reference.inclusive_ns_prefixes),
            )

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


class _PrefixListSigner(_OutgoingSigner):
    """For signatures with an InclusiveNamespaces PrefixList: libxml2's exclusive c14n does not render an
    in-scope namespace from the PrefixList in a deep-copied tree as it does in a parsed one, so the element is
    serialised and re-parsed first, as signxml itself does (the verifier always canonicalises a re-parsed copy)."""

    def get_root(self, data):
        return XMLSigner.get_root(self, data)


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


_SIGNERS: dict[tuple[str, bool], _OutgoingSigner] = {}


def _signer(algorithm: str, prefix_list: bool = False) -> _OutgoingSigner:
    signer = _SIGNERS.get((algorithm, prefix_list))
    if signer is None:
        method, digest = OUTGOING_ALGORITHMS[algorithm]
        kind = _PrefixListSigner if prefix_list else _OutgoingSigner
        signer = kind(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=EXC_C14N)
        _SIGNERS[(algorithm, prefix_list)] = signer
    return signer


def signature_placeholder() -> etree._Element:
    """Insert where the ds:Signature must go (SAML: right after Issuer); `sign_enveloped` fills it."""
    return etree.Element(qname(DS, "Signature"), Id="placeholder", nsmap={"ds": DS})


def sign_enveloped(
    element: etree._Element,
    key_pair: KeyPair,
    algorithm: str = "rsa-sha256",
    *,
    prefix_list: Sequence[str] = (),
) -> etree._Element:
    """Return a signed copy of `element` (enveloped signature, Reference to its ID, exc-c14n). `prefix_list`
    adds an InclusiveNamespaces PrefixList to the Reference's exc-c14n transform, as Okta does for "xs"."""
    if not prefix_list:
        return _signer(algorithm).sign(element, key=key_pair.private_key, cert=[key_pair.certificate])
    reference = SignatureReference(URI=f"#{element.get('ID')}", inclusive_ns_prefixes=list(prefix_list))
    return _signer(algorithm, prefix_list=True).sign(
        element, key=key_pair.private_key, cert=[key_pair.certificate], reference_uri=[reference]
    )


@dataclass(frozen=True)
class VerifiedElement:
    """The element as covered by the signature (re-parsed from canonical form, comments gone)."""

    element: etree._Element
    certificate: x509.Certificate
    certificate_expired: bool = False  # accepted past its notAfter (metadata is the trust anchor): warn


def _check_c14n_parameters(method: etree._Element, where: str) -> None:
    """An exc-c14n method may carry one ec:InclusiveNamespaces with a PrefixList and nothing else: no other
    child, attribute or text. The prefix list only changes which namespace declarations the digest covers."""
    children = list(method)
    if not children:
        if (method.text or "").strip():
            raise SignatureRejected(f"{where} holds text")
        return
    node = children[0]
    if len(children) != 1 or node.tag != INCLUSIVE_NAMESPACES:
        raise SignatureRejected(f"{where} may hold only an ec:InclusiveNamespaces element")
    if method.get("Algorithm") != EXC_C14N:
        raise SignatureRejected(f"{where}: InclusiveNamespaces belongs only in an exclusive c14n transform")
    if (
        set(node.attrib) != {"PrefixList"}
        or len(node)
        or (node.text or "").strip()
        or (node.tail or "").strip()
    ):
        raise SignatureRejected(f"{where}: InclusiveNamespaces may carry only a PrefixList attribute")
    prefixes = node.get("PrefixList", "").split()
    if len(prefixes) > 32 or not all(_PREFIX.match(prefix) for prefix in prefixes):
        raise SignatureRejected(f"{where}: InclusiveNamespaces PrefixList is not a list of prefixes")


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
    _check_c14n_parameters(c14n, "CanonicalizationMethod")
    references = signed_info.findall(qname(DS, "Reference"))
    if len(references) != 1:
        raise SignatureRejected(f"signature must have exactly one Reference, found {len(references)}")
    if not (references[0].findtext(qname(DS, "DigestValue")) or "").strip():
        raise SignatureRejected("DigestValue is empty")
    uri = references[0].get("URI")
    if uri != f"#{element_id}":
        raise SignatureRejected(f"Reference URI {uri!r} does not point at the signed element #{element_id}")
    transforms = references[0].findall(f"{qname(DS, 'Transforms')}/{qname(DS, 'Transform')}")
    algorithms = [transform.get("Algorithm") for transform in transforms]
    for transform, algorithm in zip(transforms, algorithms, strict=True):
        if algorithm not in (ENVELOPED, EXC_C14N):
            raise SignatureRejected(f"transform {algorithm!r} is not allowed (only enveloped and exc-c14n)")
        if algorithms.count(algorithm) > 1:
            raise SignatureRejected(f"transform {algorithm!r} appears more than once")
        if algorithm == ENVELOPED and (len(transform) or (transform.text or "").strip()):
            raise SignatureRejected("the enveloped-signature transform takes no parameters")
        _check_c14n_parameters(transform, "exc-c14n Transform")


def _uses_sha1(signature: etree._Element) -> bool:
    signed_info = signature.find(qname(DS, "SignedInfo"))
    if signed_info is None:
        return False
    methods = [
        signed_info.find(qname(DS, "SignatureMethod")),
        signed_info.find(f"{qname(DS, 'Reference')}/{qname(DS, 'DigestMethod')}"),
    ]
    return any(m is not None and m.get("Algorithm") in SHA1_METHODS for m in methods)


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
