"""Which portal a login goes to, and which upstream IdP it starts at. Pure functions over config and claims.

A portal comes from the bookmarked path (/login/<portal>), else from the host name, else — after the user has
signed in — from the first routing rule their identity matches. A portal may restrict who enters it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from broker.config import Config, PortalSettings, RoutingRule
from broker.errors import LoginRefused
from broker.model import Claims
from broker.rules.names import matches_any
from broker.rules.routing_index import field_values, routing_index
from broker.rules.targets import normalised_path
from broker.rules.trust import groups_match, routable_domain


class NoAccess(LoginRefused):
    """The user signed in but may enter no portal (or not the one they asked for)."""

    check = "no_access"

    def __init__(self, reason: str, *, portal: str | None = None):
        super().__init__(reason)
        self.portal = portal  # the portal asked for, if any (its own no-access message is shown)


@dataclass(frozen=True)
class RoutingDecision:
    portals: tuple[str, ...]  # one: go; several: the user picks
    reason: str


def portal_for_host(config: Config, host: str) -> str | None:
    return routing_index(config).hosts.get(host.split(":", 1)[0].lower().rstrip("."))


def upstreams_for(config: Config, portal: str | None) -> list[str]:
    """The upstream IdPs a login may start at: the portal's, or (no portal yet) every upstream."""
    if portal is not None:
        return config.portals[portal].upstream_names
    if config.routing.default_upstream:
        return [config.routing.default_upstream]
    return list(config.upstreams)


def may_enter(portal: PortalSettings, claims: Claims) -> bool:
    return not portal.required_groups or groups_match(claims, portal.required_groups)


def rule_matches(rule: RoutingRule, claims: Claims, domain: str | None) -> bool:
    """`domain`: the user's e-mail domain if their upstream may assert it (see trust.routable_domain).
    One rule, read as written; `route` asks the compiled index (routing_index), which gives the same answer."""
    if rule.groups and not groups_match(claims, rule.groups):
        return False
    if rule.email_domains and domain not in {d.lower().lstrip("@") for d in rule.email_domains}:
        return False
    for name, allowed in rule.attributes.items():
        if not matches_any(field_values(claims, name), allowed):
            return False
    return True


def route(config: Config, requested: str | None, upstream: str, claims: Claims) -> RoutingDecision:
    """The portal(s) this user may enter now, and why; NoAccess when there are none."""
    if requested is not None:
        settings = config.portals[requested]
        if upstream not in settings.upstream_names:
            raise NoAccess(f"portal {requested} does not accept upstream {upstream}", portal=requested)
        if not may_enter(settings, claims):
            raise NoAccess(
                f"{claims.email} is in none of {requested}'s required groups {settings.required_groups}",
                portal=requested,
            )
        return RoutingDecision((requested,), f"requested portal {requested}")
    domain = routable_domain(config, upstream, claims.email)
    for compiled in routing_index(config).matching(claims, domain):
        allowed = tuple(
            p for p in compiled.rule.portals
            if upstream in config.portals[p].upstream_names and may_enter(config.portals[p], claims)
        )  # fmt: skip
        if allowed:
            return RoutingDecision(allowed, f"routing rule {compiled.number + 1} matched")
    why = "" if domain else f" (e-mail domain rules skipped: {upstream} is not declared to own that domain)"
    raise NoAccess(f"no routing rule gives {claims.email} a portal{why}")


def target_allowed(portal: PortalSettings, target: str) -> bool:
    """Deep links: the normalised path (without query) must match one of the portal's patterns."""
    path = normalised_path(target)
    return path is not None and any(fnmatchcase(path, pattern) for pattern in portal.targets)
