"""Signing for portals (and the demo IdP): enveloped signatures with exc-c14n, SHA-1 only where a portal asks."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, SignatureReference, XMLSigner
from signxml.util import strip_pem_header

from broker.keys import KeyPair
from broker.saml.xml import DS, qname
from broker.saml.xmldsig.shape import EXC_C14N, INCLUSIVE_NAMESPACES

# What an outgoing signature may use; LearnUpon's guides still ask for SHA-1, so it is offered per portal.
OUTGOING_ALGORITHMS: dict[str, tuple[SignatureMethod, DigestAlgorithm]] = {
    "rsa-sha256": (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256),
    "rsa-sha1": (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
}


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
