"""The routing index gives the linear scan's answer: same matching rules in the same order, same decision,
for mixed exact names, patterns, object ids, e-mail domains and attributes; built once per configuration."""

from __future__ import annotations

import random

import pytest

from broker.config import Config, config_from_dict
from broker.model import Claims
from broker.rules.routing import NoAccess, route, rule_matches
from broker.rules.routing_index import RoutingIndex, routing_index
from broker.rules.trust import routable_domain
from tests.harness import base_config

SALES_ID = "5e8d7c6b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"
OTHER_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
THIRD_ID = "9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"

RULES = [
    {"portals": ["sales"], "groups": ["Sales EMEA"]},  # exact
    {"portals": ["academy"], "groups": ["sales*"]},  # pattern, overlaps the exact rule above
    {"portals": ["academy", "sales"], "groups": [SALES_ID]},  # object id only
    {"portals": ["sales"], "groups": ["Finance", "f[iy]n*", OTHER_ID]},  # exact, pattern and id mixed
    {"portals": ["academy"], "groups": ["Ops"], "email_domains": ["other.example"]},  # exact group and domain
    {"portals": ["sales"], "email_domains": ["@Contoso.Example"]},  # domain only (spelled loosely)
    {"portals": ["academy"], "attributes": {"department": ["Field*", "HR"]}},  # attributes only
    {"portals": ["sales"], "groups": ["Ops?"], "attributes": {"department": ["Ops"]}},  # pattern + attribute
    {"portals": ["academy"], "groups": [THIRD_ID.upper()], "email_domains": ["other.example"]},
    {"portals": ["sales"], "groups": ["[x]"]},  # a set pattern: matches the name "x", not "[x]"
    {"portals": ["academy"], "groups": ["Ops"]},  # a later exact rule for a name an earlier one uses
    {"portals": ["academy"]},  # no condition: everyone
]

GROUP_NAMES = [
    "Sales EMEA",
    "sales emea",
    "SALES",
    "Finance",
    "fyn",
    "Ops",
    "Opsx",
    "x",
    "[x]",
    "HR",
    "İstanbul",
]
GROUP_IDS = [SALES_ID, SALES_ID.upper(), OTHER_ID, THIRD_ID, "not-an-id"]
EMAILS = ["a@contoso.example", "b@CONTOSO.example", "c@other.example", "d@elsewhere.example"]
DEPARTMENTS = ["", "Field Ops", "hr", "Ops", "Finance"]


def config_for(keys, rules) -> Config:
    data = base_config(keys)
    data["upstreams"]["entra"]["email_domains"] = ["contoso.example", "other.example"]
    data["routing"] = {"rules": rules}
    return config_from_dict(data)


def linear(config: Config, claims: Claims, domain: str | None) -> list[int]:
    return [n for n, rule in enumerate(config.routing.rules) if rule_matches(rule, claims, domain)]


def indexed(config: Config, claims: Claims, domain: str | None) -> list[int]:
    return [compiled.number for compiled in routing_index(config).matching(claims, domain)]


def decision(config: Config, claims: Claims) -> tuple[tuple[str, ...], str] | str:
    try:
        result = route(config, None, "entra", claims)
    except NoAccess as exc:
        return f"refused: {exc}"
    return result.portals, result.reason


def linear_decision(config: Config, claims: Claims) -> tuple[tuple[str, ...], str] | str:
    """route() as it was before the index: the first matching rule in order with a portal the user may enter."""
    domain = routable_domain(config, "entra", claims.email)
    for n in linear(config, claims, domain):
        allowed = tuple(
            p for p in config.routing.rules[n].portals if "entra" in config.portals[p].upstream_names
        )
        if allowed:
            return allowed, f"routing rule {n + 1} matched"
    return "refused"


def random_claims(rng: random.Random) -> Claims:
    return Claims(
        email=rng.choice(EMAILS),
        groups=tuple(rng.sample(GROUP_NAMES, rng.randint(0, 4))),
        group_ids=tuple(rng.sample(GROUP_IDS, rng.randint(0, 2))),
        department=rng.choice(DEPARTMENTS),
    )


def test_index_matches_the_linear_scan_for_mixed_rules(keys):
    config = config_for(keys, RULES)
    rng = random.Random(20)
    seen_first = set()
    for _ in range(3000):
        claims = random_claims(rng)
        domain = routable_domain(config, "entra", claims.email)
        expected = linear(config, claims, domain)
        assert indexed(config, claims, domain) == expected, claims
        seen_first.add(expected[0])
    assert seen_first == set(range(len(RULES)))  # every rule was the first match at least once


@pytest.mark.parametrize("order", range(6))
def test_first_rule_in_config_order_wins_whatever_the_index_files_it_under(keys, order):
    rules = RULES[:-1]  # without the catch-all, so refusals are compared too
    random.Random(order).shuffle(rules)
    config = config_for(keys, rules)
    rng = random.Random(100 + order)
    for _ in range(500):
        claims = random_claims(rng)
        outcome = decision(config, claims)
        expected = linear_decision(config, claims)
        if expected == "refused":
            assert isinstance(outcome, str) and outcome.startswith("refused")
        else:
            assert outcome == expected, claims


def test_a_pattern_rule_before_an_exact_one_wins(keys):
    config = config_for(keys, [{"portals": ["academy"], "groups": ["Sales*"]},
                               {"portals": ["sales"], "groups": ["Sales EMEA"]}])  # fmt: skip
    result = route(config, None, "entra", Claims(email="a@contoso.example", groups=("Sales EMEA",)))
    assert result.portals == ("academy",) and result.reason == "routing rule 1 matched"


def test_object_id_entries_match_only_signed_object_ids(keys):
    config = config_for(keys, [{"portals": ["sales"], "groups": [SALES_ID]}])
    as_name = Claims(email="a@contoso.example", groups=(SALES_ID,))  # a group *named* like the id
    with pytest.raises(NoAccess):
        route(config, None, "entra", as_name)
    as_id = Claims(email="a@contoso.example", group_ids=(SALES_ID.upper(),))
    assert route(config, None, "entra", as_id).portals == ("sales",)


def test_exact_names_are_looked_up_not_scanned(keys):
    rules = [{"portals": ["academy" if i % 2 else "sales"], "groups": [f"Team {i:04d}"]} for i in range(1000)]
    config = config_for(keys, [*rules, {"portals": ["academy"], "groups": ["Team*"]}])
    index = routing_index(config)
    claims = Claims(email="a@contoso.example", groups=("TEAM 0999",))
    assert [rule.number for rule in index.candidates(claims, "contoso.example")] == [999, 1000]
    assert route(config, None, "entra", claims).reason == "routing rule 1000 matched"


def test_index_is_built_once_per_configuration(keys):
    config = config_for(keys, RULES)
    assert routing_index(config) is routing_index(config)
    reloaded = config_for(keys, RULES[:1])
    assert routing_index(reloaded) is not routing_index(config)
    assert len(routing_index(reloaded).rules) == 1
    assert isinstance(routing_index(reloaded), RoutingIndex)


def test_hosts_are_indexed_case_and_port_insensitively(keys):
    from broker.rules.routing import portal_for_host

    data = base_config(keys)
    data["portals"]["sales"]["hosts"] = ["Learn-Sales.example.com"]
    config = config_from_dict(data)
    assert portal_for_host(config, "learn-sales.EXAMPLE.com.:8443") == "sales"
    assert portal_for_host(config, "learn-academy.example.com") is None
