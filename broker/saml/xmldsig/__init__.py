"""In-process XML signatures (signxml on lxml + cryptography): sign for portals, verify upstream responses.

No external signing process is started. Keys arrive already loaded (see broker.keys), so the per-call cost
is the RSA operation plus canonicalisation. `shape` checks a signature's structure before any cryptography,
`sign` signs, `verify` verifies; this package's names are the ones the rest of the broker uses.
"""

from broker.saml.xmldsig.shape import (
    ENVELOPED,
    EXC_C14N,
    INCLUSIVE_NAMESPACES,
    SHA1_METHODS,
    CertificateExpired,
    Sha1Refused,
    SignatureRejected,
)
from broker.saml.xmldsig.sign import OUTGOING_ALGORITHMS, sign_enveloped, signature_placeholder
from broker.saml.xmldsig.verify import VerifiedElement, verify_enveloped

__all__ = [
    "ENVELOPED",
    "EXC_C14N",
    "INCLUSIVE_NAMESPACES",
    "OUTGOING_ALGORITHMS",
    "SHA1_METHODS",
    "CertificateExpired",
    "Sha1Refused",
    "SignatureRejected",
    "VerifiedElement",
    "sign_enveloped",
    "signature_placeholder",
    "verify_enveloped",
]
