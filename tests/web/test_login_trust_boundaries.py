"""Trust boundaries of the learner's way in: a replay is refused even with a comment in its Issuer, the picker's
held login cannot be burnt by someone who only has its URL, and the picker's endpoints are rate-limited."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from tests.harness import Harness, decode_redirect_request

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


def picker_harness(keys, **overrides: object) -> Harness:
    return Harness(
        keys, config_overrides={"routing__rules": [{"portals": ["academy", "sales"]}], **overrides}
    )


def signed_in_to_the_picker(harness: Harness) -> str:
    """Sign in on /login (two portals open): the picker's token."""
    reply = harness.client.get("/login")
    params = parse_qs(urlsplit(reply.headers["Location"]).query)
    request_id = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0])).get("ID")
    spec = harness.spec(None, in_response_to=request_id)
    picker = harness.post(harness.encode(harness.document(spec)), params["RelayState"][0])
    found = re.search(r'name="token" value="([^"]+)"', picker.get_data(as_text=True))
    assert found, picker.get_data(as_text=True)
    return found[1]


def test_a_stranger_with_the_continue_link_cannot_burn_it(keys):
    harness = picker_harness(keys)
    chosen = harness.client.post(
        "/login/choose", data={"token": signed_in_to_the_picker(harness), "portal": "sales"}
    )
    link = chosen.headers["Location"]
    stranger = harness.app.test_client()  # saw the URL in a proxy log; has no cookie of this browser
    refused = stranger.get(link)
    assert refused.status_code == 303 and refused.headers["Location"] == "/login/sales"
    landed = harness.client.get(link)
    assert landed.status_code == 200 and 'name="SAMLResponse"' in landed.get_data(as_text=True)
    back = harness.client.get(link)  # Back or reload after use: that portal's login afresh
    assert back.status_code == 303 and back.headers["Location"] == "/login/sales"
    assert stranger.get(link).headers["Location"] == "/login/sales"


def test_a_stranger_with_the_pickers_token_cannot_burn_the_choice(keys):
    harness = picker_harness(keys)
    token = signed_in_to_the_picker(harness)
    stranger = harness.app.test_client()
    assert stranger.post("/login/choose", data={"token": token, "portal": "sales"}).status_code == 400
    chosen = harness.client.post("/login/choose", data={"token": token, "portal": "sales"})
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/login/continue/")


def test_the_pickers_answer_and_continue_link_are_rate_limited(keys):
    harness = picker_harness(keys, rate_limits={"login_per_minute": 0, "acs_per_minute": 2})
    ip = {"REMOTE_ADDR": "198.51.100.9"}
    choose = [harness.client.post("/login/choose", data={"token": "x", "portal": "sales"}, environ_base=ip)
              for _ in range(3)]  # fmt: skip
    assert [r.status_code for r in choose] == [400, 400, 429]
    other = {"REMOTE_ADDR": "198.51.100.10"}
    follow = [harness.client.get("/login/continue/x", environ_base=other) for _ in range(3)]
    assert [r.status_code for r in follow] == [303, 303, 429]


def test_a_pending_login_of_another_shape_gives_no_500(keys):
    from broker.store import keys as store_keys

    harness = Harness(keys)
    pending = harness.login()
    store = harness.app.extensions["broker"].store
    store.put(store_keys.pending_login(pending.relay_state), b'{"request": "x", "new_field": 1}', 60)
    reply = harness.post(harness.valid_response(pending), pending.relay_state)
    # unreadable, so as if expired: this browser's login starts afresh (its restart record is readable)
    assert reply.status_code == 303 and reply.headers["Location"].startswith("/login/academy?idp=entra")
