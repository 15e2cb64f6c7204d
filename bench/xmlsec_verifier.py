"""Evaluation only, not part of the broker: its upstream signature verification with python-xmlsec doing the
cryptography instead of signxml, as a pytest plugin that puts it in the broker's place for a test run.

Every structural check of the broker stays (broker.saml.xmldsig.shape); xmlsec verifies with the trusted
certificate's key only (KeyInfo is not used for the key), with only exc-c14n, enveloped and strong
RSA / digest transforms enabled; what the caller reads is the signed element canonicalised (exc-c14n without
comments, the Reference's PrefixList) and parsed again, as signxml returns it. In a venv with xmlsec
(see bench/xmlsec_eval.py):

    PYTHONPATH=bench CI=true /tmp/xmlsec-eval/venv/bin/python -m pytest -p xmlsec_verifier tests/security tests/saml

Result in bench/README.md (section 12). The verifier calls are counted, so a run shows it was used.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

import broker.saml.response as response_module
import broker.saml.upstream_metadata as metadata_module
from broker.saml.xml import DS, is_xml_id, qname
from broker.saml.xmldsig import shape as S
from broker.saml.xmldsig import verify as V

T = xmlsec.constants
STRONG_SIG = {T.TransformRsaSha256, T.TransformRsaSha384, T.TransformRsaSha512}
STRONG_DIGEST = {T.TransformSha256, T.TransformSha384, T.TransformSha512}
SIG_URIS = {t.href for t in STRONG_SIG}
DIGEST_URIS = {t.href for t in STRONG_DIGEST}
_keys: dict[bytes, xmlsec.Key] = {}


def _key(cert: x509.Certificate) -> xmlsec.Key:
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key = _keys.get(pem)
    if key is None:
        key = _keys[pem] = xmlsec.Key.from_memory(pem, T.KeyDataFormatCertPem)
    return key


def verify_enveloped(
    element: etree._Element,
    trusted_certs: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
    now: datetime | None = None,
    enforce_certificate_expiry: bool = False,
) -> V.VerifiedElement:
    element_id = element.get("ID")
    if element_id is None or not is_xml_id(element_id):
        raise S.SignatureRejected(f"signed element's ID {element_id!r} is not a valid XML ID")
    signatures = element.findall(qname(DS, "Signature"))
    if len(signatures) != 1:
        raise S.SignatureRejected(f"expected exactly one signature on the element, found {len(signatures)}")
    signature = signatures[0]
    S._check_signature_shape(signature, element_id)
    if not allow_sha1 and S._uses_sha1(signature):
        raise S.Sha1Refused("the signature uses SHA-1")
    sig_ok, digest_ok = set(STRONG_SIG), set(STRONG_DIGEST)
    sig_uris, digest_uris = set(SIG_URIS), set(DIGEST_URIS)
    if allow_sha1:
        sig_ok.add(T.TransformRsaSha1)
        digest_ok.add(T.TransformSha1)
        sig_uris.add(T.TransformRsaSha1.href)
        digest_uris.add(T.TransformSha1.href)
    method = signature.find(f"{qname(DS, 'SignedInfo')}/{qname(DS, 'SignatureMethod')}")
    digest = signature.find(f"{qname(DS, 'SignedInfo')}/{qname(DS, 'Reference')}/{qname(DS, 'DigestMethod')}")
    if method is None or method.get("Algorithm") not in sig_uris:
        raise S.SignatureRejected("signature method not allowed")
    if digest is None or digest.get("Algorithm") not in digest_uris:
        raise S.SignatureRejected("digest method not allowed")
    candidates = list(trusted_certs)
    if not candidates:
        raise S.SignatureRejected("no signing certificate is configured for this issuer")
    if len(candidates) > 1:
        embedded = S._certificate_in_keyinfo(signature)
        candidates.sort(key=lambda c: V._certificate_der(c) != embedded)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    last: Exception | None = None
    for cert in candidates:
        if moment < cert.not_valid_before_utc:
            last = S.SignatureRejected("the signing certificate is not valid yet")
            continue
        expired = moment > cert.not_valid_after_utc
        if expired and enforce_certificate_expiry:
            last = S.CertificateExpired(
                f"the signing certificate expired on {cert.not_valid_after_utc.isoformat()}"
            )
            continue
        ctx = xmlsec.SignatureContext()
        ctx.key = _key(cert)
        for transform in (T.TransformExclC14N, *sig_ok):
            ctx.enable_signature_transform(transform)
        for transform in (T.TransformExclC14N, T.TransformEnveloped, *digest_ok):
            ctx.enable_reference_transform(transform)
        try:
            ctx.register_id(element, "ID")
            ctx.verify(signature)
        except xmlsec.VerificationError as exc:
            last = exc
            continue
        except (xmlsec.Error, ValueError, TypeError) as exc:
            raise S.SignatureRejected(f"signature not acceptable: {exc}") from exc
        # what was signed, as signxml returns it: the element without its signature, canonical (exc-c14n,
        # no comments, the Reference's PrefixList), parsed again
        covered = copy.deepcopy(element)
        covered.remove(covered.find(qname(DS, "Signature")))
        node = signature.find(
            f"{qname(DS, 'SignedInfo')}/{qname(DS, 'Reference')}/{qname(DS, 'Transforms')}/"
            f"{qname(DS, 'Transform')}[@Algorithm='{S.EXC_C14N}']/{S.INCLUSIVE_NAMESPACES}"
        )
        prefixes = node.get("PrefixList", "").split() if node is not None else None
        canonical = etree.tostring(
            covered, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=prefixes
        )
        signed = etree.fromstring(canonical, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        return V.VerifiedElement(signed, cert, expired)
    if isinstance(last, S.CertificateExpired):
        raise last
    raise S.SignatureRejected(
        f"signature does not verify with any certificate in the issuer's metadata: {last}"
    )


_calls = {"n": 0}


def _counted(*args, **kwargs) -> V.VerifiedElement:
    _calls["n"] += 1
    return verify_enveloped(*args, **kwargs)


def pytest_configure(config) -> None:
    response_module.verify_enveloped = _counted
    metadata_module.verify_enveloped = _counted


def pytest_sessionfinish(session, exitstatus) -> None:
    print(f"\nxmlsec verifier (bench/xmlsec_verifier.py) calls: {_calls['n']}")
