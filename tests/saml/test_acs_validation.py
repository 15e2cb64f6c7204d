"""Each ACS validation rule, shown by a response that breaks it (and only it) being refused."""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from broker.saml.xml import SAML, qname
from tests.harness import ACS, IDP_ENTITY, SP_ENTITY, Harness


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys)


def assert_rejected(reply, caplog=None, check: str | None = None) -> None:
    body = reply.get_data(as_text=True)
    assert 400 <= reply.status_code < 500, (reply.status_code, body[:300])
    assert 'class="button" href="/login' in body, "the error page offers a next step"
    reference = re.search(r'class="ref">([0-9a-f]{12})<', body)
    assert reference, "the error page shows a reference id"
    if caplog is not None:
        lines = [r.getMessage() for r in caplog.records if reference.group(1) in r.getMessage()]
        assert lines, "the log line carries the same reference id"
        if check is not None:
            assert f"check={check}" in lines[0], lines[0]


def assertion_of(spec_edit):
    def edit(assertion: etree._Element) -> None:
        spec_edit(assertion)

    return edit


def find(element: etree._Element, path: str) -> etree._Element:
    return element.find(path, {"saml": SAML})


def test_valid_entra_response_is_accepted(harness):
    pending = harness.login()
    reply = harness.post(harness.valid_response(pending), pending.relay_state)
    assert reply.status_code == 200
    assert 'action="https://academy.learnupon.com/saml/consumer"' in reply.get_data(as_text=True)


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_each_signing_placement_is_accepted(harness, sign):
    pending = harness.login()
    reply = harness.post(harness.valid_response(pending, sign=sign), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)


def test_unsigned_response_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, sign="none"), pending.relay_state)
    assert_rejected(reply, caplog, "signature")


def test_signature_by_key_not_in_metadata_is_refused_even_with_its_cert_in_keyinfo(harness, caplog):
    pending = harness.login()
    document = harness.document(harness.spec(pending), key=harness.keys.attacker)
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(document), pending.relay_state)
    assert_rejected(reply, caplog, "signature")


def test_value_changed_after_signing_is_refused(harness, caplog):
    pending = harness.login()
    document = harness.document(harness.spec(pending)).replace(
        b"alex@contoso.example", b"ceo@contoso.example"
    )
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(document), pending.relay_state)
    assert_rejected(reply, caplog, "signature")


def test_rollover_any_certificate_in_metadata_verifies(keys):
    harness = Harness(
        keys,
        config_overrides={
            "upstreams__entra__certificates": [keys.path("idp", "crt"), keys.path("idp-next", "crt")]
        },
    )
    for key in (keys.idp, keys.idp_next):
        pending = harness.login()
        document = harness.document(harness.spec(pending), key=key)
        assert harness.post(harness.encode(document), pending.relay_state).status_code == 200


def test_two_assertions_are_refused(harness, caplog):
    pending = harness.login()

    def add_second(response: etree._Element) -> None:
        extra = etree.fromstring(etree.tostring(response.find(qname(SAML, "Assertion"))))
        extra.set("ID", "_second")
        response.append(extra)

    spec = harness.spec(pending, edit_response=add_second)
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(harness.document(spec)), pending.relay_state)
    assert_rejected(reply, caplog, "assertion")


def test_wrong_issuer_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, issuer="https://sts.windows.net/other/"),
                             pending.relay_state)  # fmt: skip
    assert_rejected(reply, caplog, "issuer")


@pytest.mark.parametrize("destination", [None, "https://elsewhere.test/saml/acs"])
def test_missing_or_wrong_destination_is_refused(harness, caplog, destination):
    pending = harness.login()

    def set_destination(response: etree._Element) -> None:
        if destination is None:
            del response.attrib["Destination"]
        else:
            response.set("Destination", destination)

    spec = harness.spec(pending, edit_response=set_destination, sign="response")
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(harness.document(spec)), pending.relay_state)
    assert_rejected(reply, caplog, "destination")


def test_wrong_recipient_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(
            harness.valid_response(pending, recipient="https://other.test/acs"), pending.relay_state
        )
    assert_rejected(reply, caplog, "recipient")


def test_bearer_confirmation_without_not_on_or_after_is_refused(harness, caplog):
    pending = harness.login()

    def drop(assertion: etree._Element) -> None:
        data = find(assertion, "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData")
        del data.attrib["NotOnOrAfter"]

    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, edit_assertion=drop), pending.relay_state)
    assert_rejected(reply, caplog, "time")


def test_non_bearer_confirmation_is_refused(harness, caplog):
    pending = harness.login()

    def holder_of_key(assertion: etree._Element) -> None:
        find(assertion, "saml:Subject/saml:SubjectConfirmation").set(
            "Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
        )

    with caplog.at_level(logging.WARNING):
        reply = harness.post(
            harness.valid_response(pending, edit_assertion=holder_of_key), pending.relay_state
        )
    assert_rejected(reply, caplog, "subject_confirmation")


def test_audience_of_another_sp_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(
            harness.valid_response(pending, audience="https://other-sp.test"), pending.relay_state
        )
    assert_rejected(reply, caplog, "audience")


def test_every_audience_restriction_must_name_us(harness, caplog):
    pending = harness.login()

    def second_restriction(assertion: etree._Element) -> None:
        conditions = find(assertion, "saml:Conditions")
        restriction = etree.SubElement(conditions, qname(SAML, "AudienceRestriction"))
        etree.SubElement(restriction, qname(SAML, "Audience")).text = "https://other-sp.test"

    with caplog.at_level(logging.WARNING):
        reply = harness.post(
            harness.valid_response(pending, edit_assertion=second_restriction), pending.relay_state
        )
    assert_rejected(reply, caplog, "audience")


def test_expired_response_is_refused(harness, caplog):
    pending = harness.login()
    old = datetime.now(UTC) - timedelta(hours=2)
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, now=old), pending.relay_state)
    assert_rejected(reply, caplog, "time")


def test_not_yet_valid_response_is_refused(harness, caplog):
    pending = harness.login()
    future = datetime.now(UTC) + timedelta(minutes=10)
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, now=future), pending.relay_state)
    assert_rejected(reply, caplog, "time")


def test_clock_skew_within_allowance_is_accepted_and_configurable(keys):
    lenient = Harness(keys)
    pending = lenient.login()
    skewed = datetime.now(UTC) + timedelta(seconds=120)  # the IdP clock runs 2 min ahead: inside 180 s
    assert lenient.post(lenient.valid_response(pending, now=skewed), pending.relay_state).status_code == 200

    strict = Harness(keys, config_overrides={"broker__clock_skew_seconds": 10})
    pending = strict.login()
    assert strict.post(strict.valid_response(pending, now=skewed), pending.relay_state).status_code == 400


def test_response_for_another_request_is_refused(harness, caplog):
    first, second = harness.login(), harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(first), second.relay_state)
    assert_rejected(reply, caplog, "in_response_to")


def test_missing_in_response_to_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, in_response_to=None), pending.relay_state)
    assert_rejected(reply, caplog, "in_response_to")


def test_unknown_relay_state_is_refused(harness):
    pending = harness.login()
    assert_rejected(harness.post(harness.valid_response(pending), "not-a-login-we-started"))
    assert_rejected(harness.post(harness.valid_response(pending), None))


def test_same_response_twice_is_refused(harness):
    pending = harness.login()
    response = harness.valid_response(pending)
    assert harness.post(response, pending.relay_state).status_code == 200
    assert_rejected(harness.post(response, pending.relay_state))


def test_pending_request_is_deleted_on_use(harness):
    pending = harness.login()
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200
    assert harness.runtime.store.get(f"login:{pending.relay_state}") is None


def test_same_assertion_id_in_a_new_login_is_refused_as_replay(harness, caplog):
    first = harness.login()
    spec = harness.spec(first)
    assert harness.post(harness.encode(harness.document(spec)), first.relay_state).status_code == 200
    second = harness.login()
    replayed = replace(spec, in_response_to=second.request_id, response_id="_fresh")
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(harness.document(replayed)), second.relay_state)
    assert_rejected(reply, caplog, "replay")


def test_a_rejected_response_does_not_consume_the_pending_login(harness):
    pending = harness.login()
    assert_rejected(
        harness.post(harness.valid_response(pending, audience="https://x.test"), pending.relay_state)
    )
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>',
        b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
        b"not xml at all",
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><?evil pi?></samlp:Response>',
    ],
    ids=["internal-entity", "external-dtd", "not-xml", "processing-instruction"],
)
def test_unsafe_xml_is_refused_before_parsing(harness, caplog, document):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.encode(document), pending.relay_state)
    assert_rejected(reply, caplog, "xml")


def test_oversized_input_is_refused(harness):
    pending = harness.login()
    huge = base64.b64encode(b"<a>" + b"x" * (400 * 1024) + b"</a>").decode()
    reply = harness.post(huge, pending.relay_state)
    assert reply.status_code == 413
    assert "reference" in reply.get_data(as_text=True)


def test_malformed_base64_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post("%%%not-base64%%%", pending.relay_state)
    assert_rejected(reply, caplog, "xml")


def test_non_success_status_is_refused(harness, caplog):
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(
            harness.valid_response(pending, status="urn:oasis:names:tc:SAML:2.0:status:Responder"),
            pending.relay_state,
        )
    assert_rejected(reply, caplog, "status")


def test_sha1_from_upstream_is_refused_unless_allowed(keys, caplog):
    harness = Harness(keys)
    pending = harness.login()
    with caplog.at_level(logging.WARNING):
        reply = harness.post(harness.valid_response(pending, algorithm="rsa-sha1"), pending.relay_state)
    assert_rejected(reply, caplog, "signature")

    allowing = Harness(keys, config_overrides={"upstreams__entra__allow_sha1": True})
    pending = allowing.login()
    assert (
        allowing.post(allowing.valid_response(pending, algorithm="rsa-sha1"), pending.relay_state).status_code
        == 200
    )


def test_comment_inside_signed_name_id_never_truncates_it(harness):
    pending = harness.login()

    def inject(assertion: etree._Element) -> None:
        name_id = find(assertion, "saml:Subject/saml:NameID")
        name_id.text = "victim@contoso.example"
        comment = etree.Comment("")
        comment.tail = ".evil.example"
        name_id.append(comment)
        email = next(
            a for a in assertion.iter(qname(SAML, "Attribute")) if a.get("Name").endswith("emailaddress")
        )
        email.getparent().remove(email)

    reply = harness.post(harness.valid_response(pending, edit_assertion=inject), pending.relay_state)
    assert reply.status_code == 200
    outgoing = base64.b64decode(
        re.search(r'name="SAMLResponse" value="([^"]+)"', reply.get_data(as_text=True))[1]
    )
    name_id = etree.fromstring(outgoing).find(f".//{qname(SAML, 'NameID')}").text
    assert name_id == "victim@contoso.example.evil.example"


def test_missing_saml_response_field_is_a_4xx_page(harness):
    pending = harness.login()
    assert_rejected(harness.post(None, pending.relay_state))


def test_entity_ids_used_in_checks_are_the_configured_ones(harness):
    """Guards the constants the other tests rely on."""
    assert harness.config.broker.acs_url == ACS
    assert harness.config.broker.sp_entity == SP_ENTITY
    assert harness.runtime.upstreams["entra"].entity_id == IDP_ENTITY
