"""Trust boundaries between upstream IdPs, as pure rules over config and claims.

An upstream may only sign people in with the e-mail domains it owns (`upstreams.<n>.email_domains`, like
Shibboleth's shibmd:Scope); the first upstream that brought an address to a portal keeps it (unless the
portal allows account linking); and group rules can name Entra groups by object id, which a user cannot
forge, rather than by display name, which anyone who can create a group can copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from broker.config import Config, PortalSettings, UpstreamSettings, domain_in_scope
from broker.errors import LoginRefused
from broker.model import Claims
from broker.rules.names import matches_any

FIRST_UPSTREAM_TTL_SECONDS = 400 * 86400  # a first-upstream record; renewed on every login

# An Entra group object id: rule entries of this shape match object ids, never display names.
OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class EmailDomainRefused(LoginRefused):
    """The upstream asserted an address outside its own e-mail domains (`upstreams.<n>.email_domains`)."""

    check = "email_domain"


class AccountLinkRefused(LoginRefused):
    """Another upstream brought this address to the portal first, and the portal does not allow linking."""

    check = "account_linking"


class NotAnAdmin(LoginRefused):
    """An administrator sign-in from an upstream, or by a user, that `admin.upstreams` / `admin.groups` do not
    name."""

    check = "admin_group"


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower().rstrip(".")


def may_assert(upstream: UpstreamSettings, email: str) -> bool:
    """An upstream without `email_domains` is unscoped (config allows that only where it serves a portal
    alone); otherwise the address's domain must be in its scope."""
    if not upstream.email_domains:
        return True
    domain = email_domain(email)
    return any(domain_in_scope(domain, entry) for entry in upstream.email_domains)


def check_email_domain(name: str, upstream: UpstreamSettings, email: str) -> None:
    """Refuse an address outside the upstream's e-mail domains."""
    if not may_assert(upstream, email):
        raise EmailDomainRefused(
            f"upstream {name} may not assert {email_domain(email)} addresses "
            f"(its email_domains: {', '.join(upstream.email_domains)})"
        )


def check_account_link(
    portal: str, settings: PortalSettings, first_upstream: str | None, upstream: str
) -> None:
    """Refuse a second upstream for an address another upstream brought to this portal first."""
    if first_upstream is None or first_upstream == upstream or settings.account_linking == "allow":
        return
    raise AccountLinkRefused(
        f"this address first came to portal {portal} through upstream {first_upstream}, not {upstream} "
        f"(portals.{portal}.account_linking: allow would link them)"
    )


def routable_domain(config: Config, upstream: str, email: str) -> str | None:
    """The address's domain when routing rules may match on it: only domains the upstream is declared to own.
    An unscoped upstream gives routing no domain at all, so it can never pick up another's users."""
    settings = config.upstreams[upstream]
    if not settings.email_domains or not may_assert(settings, email):
        return None
    return email_domain(email)


def is_object_id(entry: str) -> bool:
    return bool(OBJECT_ID.match(entry))


def groups_match(claims: Claims, entries: Iterable[str]) -> bool:
    """Any entry matches: an object id against the object ids the upstream signed (Entra), anything else
    (names, patterns) against the resolved group names."""
    entries = list(entries)
    ids = {value.lower() for value in claims.group_ids}
    if any(is_object_id(entry) and entry.lower() in ids for entry in entries):
        return True
    return matches_any(claims.groups, [entry for entry in entries if not is_object_id(entry)])


def name_based(entries: Iterable[str]) -> list[str]:
    """The entries that match display names (which Graph does not protect), for `broker check` warnings."""
    return [entry for entry in entries if not is_object_id(entry)]
