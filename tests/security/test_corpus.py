"""Every vector of the generated attack corpus ends in a logged 4xx refusal, and no identity goes any further.

The corpus (tests/security/corpus.py) starts each vector from a genuinely signed response, so the untouched
baselines below must be accepted: the corpus cannot pass by refusing everything.
"""

from __future__ import annotations

import base64
import html
import logging
import re

import pytest
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from broker.saml.xml import SAML, qname
from tests.harness import Harness
from tests.security.corpus import (
    ALLOW_UNSOLICITED,
    CONFIGS,
    Vector,
    build_corpus,
    unsolicited,
)
from tests.security.forge import b64, signed_document

VECTORS = build_corpus()
REFUSED = [v for v in VECTORS if v.accepted is None]
SPLIT_VALUES = [v for v in VECTORS if v.accepted is not None]

# Real bugs found by the corpus: vector id → reason. Each is xfail(strict=True) until the broker is fixed; then
# the test passes, pytest reports XPASS(strict) as a failure, and the entry must be removed.
KNOWN_BUGS: dict[
    str, str
] = {}  # fixed: IDs must be xs:ID, PIs after the root, empty SignatureValue (was a 500)


REFERENCE = re.compile(r'class="ref">([0-9a-f]{12})<')


def params(vectors: list[Vector], marks: dict[str, str]) -> list:
    return [
        pytest.param(
            v, id=v.id, marks=[pytest.mark.xfail(strict=True, reason=marks[v.id])] if v.id in marks else []
        )
        for v in vectors
    ]


def attack(vector: Vector, keys, spies: dict) -> object:
    harness = Harness(keys, config_overrides=dict(vector.overrides), shape=vector.shape)
    pending = harness.login()
    saml_response, relay_state = vector.make(harness, pending)
    for spy in spies.values():  # replay vectors log in genuinely first: only the attack's own POST counts
        spy.calls = 0
    return harness.post(saml_response, relay_state)


def outgoing(body: str) -> etree._Element:
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', body)}
    return etree.fromstring(base64.b64decode(fields["SAMLResponse"]))


def outgoing_name_id(response: etree._Element) -> str:
    return response.find(f"{qname(SAML, 'Assertion')}/{qname(SAML, 'Subject')}/{qname(SAML, 'NameID')}").text


def outgoing_values(response: etree._Element, name: str) -> list[str]:
    return [
        value.text
        for attribute in response.iter(qname(SAML, "Attribute"))
        if attribute.get("Name") == name
        for value in attribute.findall(qname(SAML, "AttributeValue"))
    ]


@pytest.mark.parametrize("shape", ["entra", "okta"])
@pytest.mark.parametrize("config", CONFIGS)
def test_untouched_baseline_is_accepted(config, shape, keys, spies):
    harness = Harness(keys, shape=shape)
    pending = harness.login()
    reply = harness.post(b64(signed_document(harness, pending, config)), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    assert outgoing_name_id(outgoing(reply.get_data(as_text=True))) == "alex@contoso.example"
    assert spies["map_claims"].calls == spies["issue"].calls == 1, {n: s.calls for n, s in spies.items()}


@pytest.mark.parametrize("config", CONFIGS)
def test_untouched_unsolicited_baseline_is_accepted_where_allowed(config, keys, spies):
    harness = Harness(keys, config_overrides=dict(ALLOW_UNSOLICITED))
    reply = harness.post(*unsolicited()(config)(harness, harness.login()))
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    assert spies["issue"].calls == 1


@pytest.mark.parametrize("vector", params(REFUSED, KNOWN_BUGS))
def test_attack_is_refused_and_no_identity_goes_further(vector, keys, spies, caplog, corpus_outcomes):
    corpus_outcomes.vectors.add(vector.id)
    with caplog.at_level(logging.INFO):
        reply = attack(vector, keys, spies)
    body = reply.get_data(as_text=True)
    if reply.status_code == 200:
        corpus_outcomes.accepted.add(vector.id)
    assert 400 <= reply.status_code < 500, (reply.status_code, body[:500])
    assert {name: spy.calls for name, spy in spies.items()} == dict.fromkeys(spies, 0)
    reference = REFERENCE.search(body)
    assert reference, "the refusal page shows a reference id"
    assert any(reference[1] in r.getMessage() for r in caplog.records), "a log line carries the reference"


@pytest.mark.parametrize(
    "vector",
    params(REFUSED, KNOWN_BUGS),
)
def test_refusal_is_logged_as_a_warning_naming_the_check(vector, keys, spies, caplog):
    with caplog.at_level(logging.INFO):
        reply = attack(vector, keys, spies)
    reference = REFERENCE.search(reply.get_data(as_text=True))
    assert reference
    lines = [r for r in caplog.records if reference[1] in r.getMessage() and r.levelno == logging.WARNING]
    assert lines, [r.getMessage() for r in caplog.records]
    check = re.search(r"check=(\w+)", lines[0].getMessage())
    assert check, lines[0].getMessage()
    assert check[1] in vector.checks, f"refused by {check[1]!r}, expected one of {sorted(vector.checks)}"


@pytest.mark.parametrize("vector", params(SPLIT_VALUES, KNOWN_BUGS))
def test_comment_or_cdata_never_truncates_a_signed_value(vector, keys, spies, corpus_outcomes):
    """The classic split (`victim@corp.com<!---->.evil.com`, signed as `victim@corp.com.evil.com`) must reach
    the portal in full: being accepted with the full value is the correct outcome, a truncated value is a bug."""
    corpus_outcomes.vectors.add(vector.id)
    reply = attack(vector, keys, spies)
    expected = vector.accepted
    body = reply.get_data(as_text=True)
    if reply.status_code != 200:  # refusing is safe too, but must be a clean, logged 4xx
        assert 400 <= reply.status_code < 500 and REFERENCE.search(body), (reply.status_code, body[:300])
        assert all(spy.calls == 0 for spy in spies.values())
        return
    response = outgoing(body)
    carried = (
        outgoing_name_id(response)
        if expected.attribute is None
        else outgoing_values(response, expected.attribute)
    )
    texts = {t.strip() for t in response.itertext()}
    if expected.truncated in texts or (carried != expected.full and carried != [expected.full]):
        corpus_outcomes.accepted.add(vector.id)
    assert expected.truncated not in texts, "a comment or CDATA section truncated a signed value"
    assert carried in (expected.full, [expected.full])
    if expected.attribute is not None and "@" in expected.full:
        assert outgoing_name_id(response) == expected.full


# The SignedInfo edits are re-signed with the IdP's key: a lenient verifier (signxml with any number of
# References, signature anywhere) accepts them, so the construct is the vector's only defect.
GENUINE_CONSTRUCTS = {
    "two_references": 2,
    "empty_reference_uri": 1,
    "xpath_transform": 1,
    "reference_to_another_element": 1,
    "c14n_with_comments": 1,
}


@pytest.mark.parametrize(("name", "references"), GENUINE_CONSTRUCTS.items())
def test_signature_construct_vectors_carry_a_genuine_idp_signature(name, references, keys):
    vector = next(v for v in VECTORS if v.id == f"assertion:{name}")
    harness = Harness(keys)
    saml_response, _ = vector.make(harness, harness.login())
    root = etree.fromstring(base64.b64decode(saml_response))
    signed = root if name == "reference_to_another_element" else root.find(qname(SAML, "Assertion"))
    config = SignatureConfiguration(expect_references=references, location=".//")
    XMLVerifier().verify(signed, x509_cert=keys.idp.certificate, expect_config=config)
