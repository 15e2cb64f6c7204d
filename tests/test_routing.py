"""Routing rules, access, deep-link patterns and IdP-initiated logins, through the app (no network)."""

from __future__ import annotations

import pytest

from broker.config import config_from_dict
from broker.model import Claims
from broker.rules.routing import NoAccess, portal_for_host, route, target_allowed
from broker.web.error_table import shown_for
from tests.harness import Harness, base_config


def config_with_rules(keys):
    data = base_config(keys)
    data["portals"]["sales"].update({"required_groups": ["Sales*"], "hosts": ["learn-sales.example.com"]})
    data["upstreams"]["entra"]["email_domains"] = ["contoso.example", "other.example"]
    data["routing"] = {"rules": [
        {"portals": ["academy", "sales"], "groups": ["Sales*"]},
        {"portals": ["academy"], "email_domains": ["contoso.example"]},
        {"portals": ["sales"], "attributes": {"department": ["Field*"]}},
    ], "no_access_message": "Ask the learning team."}  # fmt: skip
    return config_from_dict(data)


def claims(email="a@contoso.example", groups=(), department=""):
    return Claims(email=email, groups=tuple(groups), department=department)


def test_first_matching_rule_wins_and_several_portals_mean_a_choice(keys):
    config = config_with_rules(keys)
    assert route(config, None, "entra", claims(groups=["Sales EMEA"])).portals == ("academy", "sales")
    assert route(config, None, "entra", claims()).portals == ("academy",)
    # Rule 3 names sales for Field departments, but sales requires Sales* groups: no portal is left.
    with pytest.raises(NoAccess) as refused:
        route(config, None, "entra", claims(email="x@other.example", department="Field Ops"))
    assert (
        shown_for(type(refused.value)).text_for(refused.value, lambda: config) == "Ask the learning team."
    )  # the page's text


def test_requested_portal_checks_required_groups(keys):
    config = config_with_rules(keys)
    assert route(config, "sales", "entra", claims(groups=["sales team"])).portals == ("sales",)
    with pytest.raises(NoAccess):
        route(config, "sales", "entra", claims(groups=["Finance"]))


def test_host_routing(keys):
    config = config_with_rules(keys)
    assert portal_for_host(config, "LEARN-SALES.example.com:443") == "sales"
    assert portal_for_host(config, "broker.test") is None


def test_target_patterns(keys):
    data = base_config(keys)
    data["portals"]["academy"]["targets"] = ["/courses/*", "/dashboard"]
    portal = config_from_dict(data).portals["academy"]
    assert target_allowed(portal, "/courses/12?tab=1")
    assert target_allowed(portal, "/dashboard")
    assert not target_allowed(portal, "/admin")


def test_landing_path_is_the_relay_state_without_a_target(keys):
    import base64
    import re

    harness = Harness(keys, config_overrides={"portals__academy__landing_path": "/dashboard"})
    pending = harness.login()
    body = harness.post(harness.valid_response(pending), pending.relay_state).get_data(as_text=True)
    assert 'name="RelayState" value="/dashboard"' in body
    assert base64.b64decode(re.search(r'name="SAMLResponse" value="([^"]+)"', body)[1])


def test_idp_initiated_login_is_refused_by_default(keys, caplog):
    harness = Harness(keys)
    response = harness.valid_response(None)  # no InResponseTo: unsolicited
    reply = harness.post(response, "academy")
    assert reply.status_code == 400
    assert "check=unsolicited" in caplog.text


def test_idp_initiated_login_when_allowed_is_routed_and_replay_protected(keys):
    harness = Harness(keys, config_overrides={"upstreams__entra__allow_unsolicited": True,
                                              "upstreams__entra__default_portal": "academy"})  # fmt: skip
    response = harness.valid_response(None)
    first = harness.post(response, "sales")
    assert first.status_code == 200
    assert 'action="https://sales.learnupon.com/saml/consumer"' in first.get_data(as_text=True)
    assert harness.post(response, "sales").status_code == 400  # replay still refused
    by_default = harness.post(harness.valid_response(None), None)
    assert 'action="https://academy.learnupon.com/saml/consumer"' in by_default.get_data(as_text=True)
    assert harness.post(harness.valid_response(None), "no-such-portal").status_code == 400


def test_unsolicited_response_carrying_in_response_to_is_an_expired_login(keys):
    harness = Harness(keys, config_overrides={"upstreams__entra__allow_unsolicited": True})
    pending = harness.login()
    reply = harness.post(harness.valid_response(pending), "academy")
    assert reply.status_code == 400
    assert "This sign-in link has expired" in reply.get_data(as_text=True)


def test_key_rollover_publishes_both_certificates(keys):
    from broker.saml.metadata import parse_idp_metadata

    harness = Harness(
        keys, config_overrides={"portals__academy__next_certificate": keys.path("idp-next", "crt")}
    )
    xml = harness.client.get("/portals/academy/metadata?format=xml")
    assert parse_idp_metadata(xml.data).certificates == (keys.broker.certificate, keys.idp_next.certificate)
    assert xml.headers["X-Next-Certificate-SHA1-Fingerprint"] == keys.idp_next.sha1_fingerprint
    page = harness.client.get("/portals/academy/metadata", headers={"Accept": "text/html"}).get_data(
        as_text=True
    )
    assert keys.broker.sha1_fingerprint in page and keys.idp_next.sha1_fingerprint in page
    assert keys.idp_next.sha256_fingerprint in page


def test_key_rollover_end_to_end_with_a_portal_trusting_fingerprints(keys):
    """The LearnUpon procedure: add the next fingerprint, switch the broker's key, then drop the old one."""
    import re

    from broker.demo.learnupon_portal import MockPortalSettings, PortalRejected, consume_assertion

    acs, audience = "https://academy.learnupon.com/saml/consumer", "https://academy.learnupon.com"

    def issued_by(harness: Harness) -> str:
        pending = harness.login()
        body = harness.post(harness.valid_response(pending), pending.relay_state).get_data(as_text=True)
        return re.search(r'name="SAMLResponse" value="([^"]+)"', body)[1]

    before = Harness(
        keys, config_overrides={"portals__academy__next_certificate": keys.path("portal", "crt")}
    )
    after = Harness(keys, config_overrides={"portals__academy__signing": {"key": keys.path("portal", "key"),
                                                                          "cert": keys.path("portal", "crt")}})  # fmt: skip
    both = MockPortalSettings([keys.broker.sha1_fingerprint, keys.portal.sha1_fingerprint], audience)
    old_only = MockPortalSettings([keys.broker.sha1_fingerprint], audience)
    new_only = MockPortalSettings([keys.portal.sha256_fingerprint], audience)

    assert consume_assertion(issued_by(before), acs, both)[0] == "alex@contoso.example"  # step 1: both listed
    assert consume_assertion(issued_by(after), acs, both)[0] == "alex@contoso.example"  # step 2: key switched
    assert (
        consume_assertion(issued_by(after), acs, new_only)[0] == "alex@contoso.example"
    )  # step 3: old removed
    with pytest.raises(PortalRejected, match="fingerprint"):
        consume_assertion(
            issued_by(after), acs, old_only
        )  # switching before adding the fingerprint breaks logins
