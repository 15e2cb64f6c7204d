"""exc-c14n's InclusiveNamespaces PrefixList (Okta, Keycloak, goxmldsig): honoured exactly, never a bypass.

Each edited signature here is re-signed with the real key, so a refusal can only come from the digest or from
the construct itself, never from a broken SignatureValue.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from lxml import etree

from broker.demo.idp_response import DemoUser, ResponseSpec, build_assertion
from broker.saml.xml import DS, qname
from broker.saml.xmldsig import (
    EXC_C14N,
    INCLUSIVE_NAMESPACES,
    SignatureRejected,
    sign_enveloped,
    signature_placeholder,
    verify_enveloped,
)
from broker.saml.xmldsig.sign import _signer

USER = DemoUser("kim@fabrikam.example", "Kim", "Lee", "oid", ["Partners"])
SIGNED_INFO = qname(DS, "SignedInfo")
C14N_TRANSFORM = (
    f"{SIGNED_INFO}/{qname(DS, 'Reference')}/{qname(DS, 'Transforms')}/{qname(DS, 'Transform')}[2]"
)


def okta_assertion() -> etree._Element:
    """Okta's shape: saml2: prefixes, xs declared but used only inside xsi:type values."""
    spec = ResponseSpec(
        issuer="http://www.okta.com/exk1", destination="https://b.test/saml/acs", audience="https://b.test",
        name_id=USER.email, attributes=USER.okta_attributes(), in_response_to="_r", now=datetime.now(UTC),
        shape="okta", sign="none",
    )  # fmt: skip
    assertion = build_assertion(spec)
    assertion.insert(1, signature_placeholder())
    return assertion


def resign(element: etree._Element, key_pair) -> None:
    signature = element.find(qname(DS, "Signature"))
    canonical = etree.tostring(signature.find(SIGNED_INFO), method="c14n", exclusive=True)
    value = key_pair.private_key.sign(canonical, PKCS1v15(), hashes.SHA256())
    signature.find(qname(DS, "SignatureValue")).text = base64.b64encode(value).decode()


def reparsed(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def test_a_prefix_list_signature_verifies_and_the_prefix_matters(keys):
    signed = reparsed(sign_enveloped(okta_assertion(), keys.idp, prefix_list=("xs",)))
    node = signed.find(f"{qname(DS, 'Signature')}/{C14N_TRANSFORM}/{INCLUSIVE_NAMESPACES}")
    assert node is not None and node.get("PrefixList") == "xs"

    verified = verify_enveloped(signed, [keys.idp.certificate])

    # xs survives in the signed copy only because the PrefixList kept its declaration
    assert "xs" in verified.element.nsmap


@pytest.mark.parametrize("edit", ["remove", "xsi", "empty"])
def test_a_wrong_prefix_list_makes_the_digest_fail(keys, edit):
    signed = reparsed(sign_enveloped(okta_assertion(), keys.idp, prefix_list=("xs",)))
    node = signed.find(f"{qname(DS, 'Signature')}/{C14N_TRANSFORM}/{INCLUSIVE_NAMESPACES}")
    if edit == "remove":
        node.getparent().remove(node)
    else:
        node.set("PrefixList", "xsi" if edit == "xsi" else "")
    resign(signed, keys.idp)

    with pytest.raises(SignatureRejected, match="Digest mismatch"):
        verify_enveloped(signed, [keys.idp.certificate])


def test_prefix_list_whitespace_is_any_xml_whitespace(keys):
    """exc-c14n's PrefixList is whitespace-separated: extra spaces, tabs and newlines change nothing."""
    signed = reparsed(sign_enveloped(okta_assertion(), keys.idp, prefix_list=("xs",)))
    node = signed.find(f"{qname(DS, 'Signature')}/{C14N_TRANSFORM}/{INCLUSIVE_NAMESPACES}")
    node.set("PrefixList", "  xs\t\n ")
    resign(signed, keys.idp)

    assert verify_enveloped(signed, [keys.idp.certificate]).element is not None


def test_a_prefix_list_on_the_signed_info_canonicalisation_is_honoured(keys):
    """Some IdPs (and signxml's inclusive_ns_prefixes) also put it in SignedInfo's CanonicalizationMethod."""
    signed = _signer("rsa-sha256").sign(
        okta_assertion(), key=keys.idp.private_key, cert=[keys.idp.certificate], inclusive_ns_prefixes=["xs"]
    )
    signed = reparsed(signed)
    method = signed.find(f"{qname(DS, 'Signature')}/{SIGNED_INFO}/{qname(DS, 'CanonicalizationMethod')}")
    assert method.find(INCLUSIVE_NAMESPACES) is not None

    assert verify_enveloped(signed, [keys.idp.certificate]).element is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("second child", "only an ec:InclusiveNamespaces"),
        ("extra attribute", "only a PrefixList"),
        ("not a prefix", "not a list of prefixes"),
        ("text", "only a PrefixList"),
        ("on enveloped", "takes no parameters"),
    ],
)
def test_anything_else_in_a_transform_is_refused(keys, change, message):
    signed = reparsed(sign_enveloped(okta_assertion(), keys.idp, prefix_list=("xs",)))
    transform = signed.find(f"{qname(DS, 'Signature')}/{C14N_TRANSFORM}")
    node = transform.find(INCLUSIVE_NAMESPACES)
    if change == "second child":
        transform.append(copy.deepcopy(node))
    elif change == "extra attribute":
        node.set("Id", "n1")
    elif change == "not a prefix":
        node.set("PrefixList", "xs:string")
    elif change == "text":
        node.text = "xs"
    else:
        transform.getprevious().append(copy.deepcopy(node))
    resign(signed, keys.idp)

    with pytest.raises(SignatureRejected, match=message):
        verify_enveloped(signed, [keys.idp.certificate])


def test_inclusive_namespaces_outside_the_exc_c14n_namespace_is_refused(keys):
    signed = reparsed(sign_enveloped(okta_assertion(), keys.idp))
    transform = signed.find(f"{qname(DS, 'Signature')}/{C14N_TRANSFORM}")
    assert transform.get("Algorithm") == EXC_C14N
    etree.SubElement(transform, qname(DS, "InclusiveNamespaces"), PrefixList="xs")
    resign(signed, keys.idp)

    with pytest.raises(SignatureRejected, match="only an ec:InclusiveNamespaces"):
        verify_enveloped(signed, [keys.idp.certificate])


def test_library_advice_never_reaches_the_refusal_message(keys):
    """signxml ends some messages with advice for its callers ("Use verify(ignore_ambiguous_key_info=True)"):
    the broker's reason keeps the finding and drops the advice."""
    signed = _signer("rsa-sha256").sign(
        okta_assertion(), key=keys.idp.private_key, cert=[keys.idp.certificate], always_add_key_value=True
    )
    signed = reparsed(signed)
    # KeyInfo is outside SignedInfo: swap the KeyValue's modulus for another key's, the signature still verifies
    modulus = next(signed.iter(qname(DS, "Modulus")))
    other = keys.attacker.private_key.public_key().public_numbers().n
    modulus.text = base64.b64encode(other.to_bytes((other.bit_length() + 7) // 8, "big")).decode()

    with pytest.raises(SignatureRejected) as refused:
        verify_enveloped(signed, [keys.idp.certificate])

    assert "different public keys" in str(refused.value)
    assert "Use verify(" not in str(refused.value) and "ignore_ambiguous_key_info" not in str(refused.value)
