"""Trust boundaries as pure rules: e-mail scopes, overlaps refused at config load, account linking,
object-id group rules, and routing rules that only see domains an upstream owns."""

from __future__ import annotations

import pytest

from broker.config import config_from_dict, domain_in_scope, scope_entries_overlap
from broker.errors import ConfigError
from broker.model import Claims
from broker.rules import trust
from broker.rules.routing import NoAccess, route
from broker.web.error_table import shown_for
from tests.harness import IDP_ENTITY, IDP_SSO, base_config

ALL_STAFF_ID = "5e8d7c6b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"


def two_upstream_config(keys, entra_domains=None, okta_domains=None, **portal: object):
    data = base_config(keys)
    data["upstreams"]["okta"] = {"preset": "okta", "entity_id": "http://www.okta.com/exk1", "sso_url": IDP_SSO,
                                 "certificates": [keys.path("okta", "crt")]}  # fmt: skip
    if entra_domains is not None:
        data["upstreams"]["entra"]["email_domains"] = entra_domains
    if okta_domains is not None:
        data["upstreams"]["okta"]["email_domains"] = okta_domains
    data["portals"]["academy"] = {"upstreams": ["entra", "okta"], **portal}
    return data


def test_scope_entries_cover_exact_domains_and_subdomains_only():
    assert domain_in_scope("contoso.com", "contoso.com")
    assert domain_in_scope("CONTOSO.com.", "contoso.com")
    assert not domain_in_scope("evilcontoso.com", "contoso.com")
    assert not domain_in_scope("contoso.com.evil.example", "contoso.com")
    assert domain_in_scope("eu.contoso.com", "*.contoso.com")
    assert not domain_in_scope("contoso.com", "*.contoso.com")
    assert not domain_in_scope("evilcontoso.com", "*.contoso.com")


def test_scope_overlap_sees_wildcards():
    assert scope_entries_overlap("contoso.com", "contoso.com")
    assert scope_entries_overlap("*.contoso.com", "eu.contoso.com")
    assert scope_entries_overlap("eu.contoso.com", "*.contoso.com")
    assert scope_entries_overlap("*.contoso.com", "*.eu.contoso.com")
    assert not scope_entries_overlap("*.contoso.com", "contoso.com")
    assert not scope_entries_overlap("contoso.com", "fabrikam.com")


def test_upstream_may_assert_only_its_domains(keys):
    config = config_from_dict(two_upstream_config(keys, ["contoso.example"], ["fabrikam.example"]))
    okta = config.upstreams["okta"]
    assert trust.may_assert(okta, "jordan@FABRIKAM.example")
    assert not trust.may_assert(okta, "alex.morgan@contoso.example")
    with pytest.raises(trust.EmailDomainRefused) as refused:
        trust.check_email_domain("okta", okta, "alex.morgan@contoso.example")
    assert shown_for(type(refused.value)).status == 403
    assert "okta may not assert contoso.example" in refused.value.reason


def test_portal_with_two_upstreams_needs_email_domains_on_each(keys):
    with pytest.raises(ConfigError, match=r"upstreams\.okta\.email_domains: portal academy accepts several"):
        config_from_dict(two_upstream_config(keys, ["contoso.example"]))


def test_overlapping_domains_are_refused_unless_listed_as_shared(keys):
    data = two_upstream_config(keys, ["eu.contoso.example"], ["fabrikam.example", "*.contoso.example"])
    with pytest.raises(
        ConfigError, match=r"portals\.academy: upstreams entra \(eu\.contoso\.example\) and okta"
    ):
        config_from_dict(data)
    data = two_upstream_config(keys, ["contoso.example"], ["contoso.example"],
                               shared_email_domains=["contoso.example"])  # fmt: skip
    assert config_from_dict(data).portals["academy"].shared_email_domains == ["contoso.example"]


def test_a_bad_domain_entry_is_named(keys):
    data = base_config(keys)
    data["upstreams"]["entra"]["email_domains"] = ["contoso.example/evil"]
    with pytest.raises(
        ConfigError, match=r"upstreams\.entra\.email_domains: 'contoso\.example/evil' is not a"
    ):
        config_from_dict(data)


def test_account_link_keeps_the_first_upstream_unless_allowed(keys):
    config = config_from_dict(two_upstream_config(keys, ["contoso.example"], ["fabrikam.example"]))
    portal = config.portals["academy"]
    trust.check_account_link("academy", portal, None, "okta")
    trust.check_account_link("academy", portal, "okta", "okta")
    with pytest.raises(trust.AccountLinkRefused, match="first came to portal academy through upstream entra"):
        trust.check_account_link("academy", portal, "entra", "okta")
    linked = portal.model_copy(update={"account_linking": "allow"})
    trust.check_account_link("academy", linked, "entra", "okta")


def test_object_id_rules_match_only_signed_ids_never_names():
    entra_user = Claims(email="a@contoso.example", groups=("All Staff",), group_ids=(ALL_STAFF_ID,))
    # an Okta (or spoofing Entra) user whose group is *named* like the id, or like the admin group
    lookalike = Claims(email="m@fabrikam.example", groups=(ALL_STAFF_ID, "All Staff"))
    assert trust.groups_match(entra_user, [ALL_STAFF_ID.upper()])
    assert not trust.groups_match(lookalike, [ALL_STAFF_ID])
    assert trust.groups_match(lookalike, ["All Staff"])  # names stay names (hence the check warning)
    assert trust.name_based([ALL_STAFF_ID, "All Staff", "Sales*"]) == ["All Staff", "Sales*"]


def test_routing_on_email_domains_sees_only_domains_the_upstream_owns(keys):
    data = two_upstream_config(keys, ["contoso.example"], ["fabrikam.example"])
    data["portals"]["partners"] = {"upstream": "okta"}
    data["upstreams"]["google"] = {"entity_id": "https://accounts.google.com/o/saml2?idpid=x", "sso_url": IDP_SSO,
                                   "certificates": [keys.path("okta", "crt")]}  # fmt: skip
    data["portals"]["guests"] = {"upstream": "google"}
    data["routing"] = {
        "rules": [{"portals": ["academy", "partners", "guests"], "email_domains": ["contoso.example"]}]
    }
    config = config_from_dict(data)
    assert route(config, None, "entra", Claims(email="alex@contoso.example")).portals == ("academy",)
    with pytest.raises(NoAccess):  # okta does not own contoso.example: the rule is not for its users
        route(config, None, "okta", Claims(email="alex@contoso.example"))
    with pytest.raises(NoAccess, match="google is not declared to own"):  # unscoped: owns no domain at all
        route(config, None, "google", Claims(email="alex@contoso.example"))
    assert IDP_ENTITY  # the harness's Entra upstream is the one with contoso.example
