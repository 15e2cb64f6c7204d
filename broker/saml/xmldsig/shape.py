"""The shape an upstream's ds:Signature must have before any cryptography runs (wrapping attacks begin with
a shape the verifier did not expect), the constants that shape is written in, and the signature errors."""

from __future__ import annotations

import base64
import re

from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from broker.saml.xml import DS, qname

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
# exc-c14n's one parameter (Okta, Keycloak, goxmldsig, Shibboleth): namespaces to render as in inclusive c14n.
INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"
SHA1_METHODS = frozenset({SignatureMethod.RSA_SHA1.value, DigestAlgorithm.SHA1.value})
# A PrefixList token: an NCName prefix, or #default for the default namespace (exc-c14n spec, section 3).
_PREFIX = re.compile(r"^(?:#default|[A-Za-z_][A-Za-z0-9_.-]*)$")


class SignatureRejected(ValueError):
    """The signature is absent, malformed, uses a forbidden construct, or does not verify."""


class Sha1Refused(SignatureRejected):
    """The signature uses SHA-1, which this upstream is not allowed to use (the caller names the setting)."""


class CertificateExpired(SignatureRejected):
    """The only certificate that verifies has expired, and this upstream enforces certificate expiry."""


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
