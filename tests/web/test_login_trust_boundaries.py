"""Trust boundaries of the learner's way in: a replay is refused even with a comment in its Issuer, the picker's
held login cannot be burnt by someone who only has its URL, and the picker's endpoints are rate-limited."""

from __future__ import annotations

import base64
import re

from lxml import etree

from tests.harness import Harness

SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def with_comment_in_issuer(document: bytes) -> bytes:
    """The same signed response with `<!---->` inside the assertion's Issuer (exc-c14n drops comments, so the
    signature still verifies)."""
    root = etree.fromstring(document)
    issuer = root.find(f"{SAML}Assertion/{SAML}Issuer")
    full = issuer.text
    issuer.text = full[:8]
    comment = etree.Comment("")
    issuer.append(comment)
    comment.tail = full[8:]
    return etree.tostring(root)


def test_a_replay_with_a_comment_in_its_issuer_is_refused_as_a_replay(keys):
    harness = Harness(keys)
    pending = harness.login()
    response = harness.valid_response(pending)
    assert harness.post(response, pending.relay_state).status_code == 200
    tampered = with_comment_in_issuer(base64.b64decode(response))
    again = harness.post(base64.b64encode(tampered).decode(), pending.relay_state)
    assert again.status_code == 400, again.headers.get("Location")
    assert "Location" not in again.headers  # not a fresh login at the IdP
    exact = harness.post(response, pending.relay_state)  # the plain replay, for comparison
    title = re.compile(r"<h1>[^<]*</h1>")
    assert exact.status_code == 400 and title.findall(again.get_data(as_text=True)) == title.findall(
        exact.get_data(as_text=True)
    )


def test_a_restart_record_of_another_shape_gives_no_500(keys):
    from broker.store import keys as store_keys

    harness = Harness(keys)
    pending = harness.login()
    response = harness.valid_response(pending)
    assert harness.post(response, pending.relay_state).status_code == 200
    # a rolling deploy: another version of the broker wrote the restart record with other fields
    store = harness.app.extensions["broker"].store
    store.put(store_keys.login_restart(pending.relay_state), b'{"portal": "academy", "idp": "entra"}', 60)
    again = harness.post(harness.valid_response(pending), pending.relay_state)
    assert again.status_code == 400
