"""From a SCIM user (as JSON) and its groups' names to what each LearnUpon portal should hold. Pure functions.

The same rules as a login: the canonical `Claims`, the routing rules (`broker.rules.routing`) for which portals,
and the portal's output profile for group names (`broker.rules.portal_groups`, the one function the assertion
and pre-provisioning use too) and custom data (`broker.claims.profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.claims.profile import custom_data
from broker.config import Config
from broker.model import Claims
from broker.rules.portal_groups import portal_groups
from broker.rules.routing import may_enter
from broker.rules.routing_index import routing_index
from broker.rules.trust import email_domain, routable_domain
from broker.scim.trust import may_write

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def email_of(user: dict[str, Any]) -> str:
    """`userName` when it is an address (it is what the IdP keys the user by), else the work or primary email."""
    user_name = str(user.get("userName") or "").strip()
    if "@" in user_name:
        return user_name
    emails = [e for e in user.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    for wanted in (lambda e: e.get("type") == "work", lambda e: e.get("primary") is True, lambda e: True):
        for email in emails:
            if wanted(email):
                return str(email["value"]).strip()
    return user_name


def claims_of(user: dict[str, Any], group_names: list[str]) -> Claims:
    """The canonical user a login would produce, from what the IdP pushed."""
    name = user.get("name") or {}
    enterprise = user.get(ENTERPRISE) or {}
    manager = enterprise.get("manager") or {}
    extra: dict[str, tuple[str, ...]] = {}
    for key, value in (
        ("employeeNumber", enterprise.get("employeeNumber")),
        ("costCenter", enterprise.get("costCenter")),
        ("organization", enterprise.get("organization")),
        ("division", enterprise.get("division")),
        ("manager", manager.get("value") if isinstance(manager, dict) else None),
        ("managerDisplayName", manager.get("displayName") if isinstance(manager, dict) else None),
        ("title", user.get("title")),
        ("userType", user.get("userType")),
        ("externalId", user.get("externalId")),
        ("userName", user.get("userName")),
    ):
        if value:
            extra[key] = (str(value),)
    return Claims(
        email=email_of(user),
        first_name=str(name.get("givenName") or ""),
        last_name=str(name.get("familyName") or ""),
        display_name=str(user.get("displayName") or ""),
        groups=tuple(group_names),
        subject=str(user.get("externalId") or ""),
        department=str(enterprise.get("department") or ""),
        extra=extra,
    )


def scim_portals(config: Config, tenant_portal: str | None) -> list[str]:
    """Portals SCIM may write to: provisioning credentials and SCIM enabled (one, on a per-portal URL)."""
    names = [tenant_portal] if tenant_portal is not None else list(config.portals)
    return [
        n for n in names if config.portals[n].provisioning.enabled and config.portals[n].scim.enabled
    ]  # fmt: skip


def portals_for(config: Config, claims: Claims, upstream: str | None, tenant_portal: str | None) -> list[str]:
    """The portals this user belongs in now. Per-portal URL: that portal if the user may enter it. Otherwise
    the first routing rule the user matches (every portal it names, as the login's portal picker would offer),
    limited to portals that accept the SCIM client's upstream. Nowhere for an address the upstream may not
    assert."""
    if not may_write(config, upstream, claims.email):
        return []  # the login's boundary, on every tenant and for every rule (groups too): see broker.scim.trust
    usable = set(scim_portals(config, tenant_portal))

    def accepts(portal: str) -> bool:
        settings = config.portals[portal]
        return (
            portal in usable
            and (upstream is None or upstream in settings.upstream_names)
            and may_enter(settings, claims)
        )

    if tenant_portal is not None:
        return [tenant_portal] if accepts(tenant_portal) else []
    # as a login: e-mail domain rules see only a domain the client's upstream owns (issue 14's boundary)
    domain = routable_domain(config, upstream, claims.email) if upstream else email_domain(claims.email)
    for compiled in routing_index(config).matching(claims, domain):
        allowed = [p for p in compiled.rule.portals if accepts(p)]
        if allowed:
            return allowed
    return []


@dataclass(frozen=True)
class PortalUser:
    """What one portal should hold for the user: `fields` of the LearnUpon `User`, and group titles."""

    fields: dict[str, Any]
    groups: tuple[str, ...]


def portal_user(config: Config, portal: str, claims: Claims, active: bool) -> PortalUser:
    settings = config.portals[portal]
    fields: dict[str, Any] = {"email": claims.email, "enabled": bool(active)}
    if claims.first_name:
        fields["first_name"] = claims.first_name
    if claims.last_name:
        fields["last_name"] = claims.last_name
    data = {name: values[0] for name, values in custom_data(claims, settings.custom_data).items() if values}
    if data:
        fields["CustomData"] = data
    return PortalUser(fields, portal_groups(claims.groups, settings.groups))
