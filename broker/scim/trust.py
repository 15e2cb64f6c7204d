"""The login's trust boundaries, applied to SCIM writes (the review's H1).

A SCIM client speaks for one upstream IdP (`scim.clients[].upstream`). It may only write users whose address
that upstream may assert at a login (`broker.rules.trust.may_assert`, its `email_domains`), and it may only take
over a LearnUpon account when the portal's first-upstream record for the address (written by logins) is
absent or names its upstream, or the portal says `account_linking: allow`; it records itself as the first
upstream of the accounts it brings. A client without an upstream is trusted with no upstream's domains: only
addresses no upstream's `email_domains` claims, and no account any upstream has brought (`broker check` warns).
"""

from __future__ import annotations

import logging

from broker.config import Config
from broker.errors import new_reference
from broker.ops.audit import audit
from broker.rules.trust import FIRST_UPSTREAM_TTL_SECONDS, email_domain, may_assert
from broker.store import Store, keys

log = logging.getLogger(__name__)


class ScimRefused(Exception):
    """A SCIM write the client may not make. `detail` goes to the client (nothing about other users); `reason`
    (the specifics) goes to the audit event and the log only, under `reference`."""

    def __init__(self, status: int, scim_type: str | None, detail: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.scim_type = scim_type
        self.reference = new_reference()
        self.detail = f"{detail} (reference {self.reference})"
        self.reason = reason


def owners_of(config: Config, email: str) -> list[str]:
    """The upstreams that declare the address's domain in their `email_domains`."""
    return [
        name for name, upstream in config.upstreams.items()
        if upstream.email_domains and may_assert(upstream, email)
    ]  # fmt: skip


def may_write(config: Config, upstream: str | None, email: str) -> bool:
    """The login's rule: the client's upstream may assert the address; a client without an upstream only
    addresses no upstream owns."""
    if upstream is None:
        return not owners_of(config, email)
    settings = config.upstreams.get(upstream)
    return settings is not None and may_assert(settings, email)


def check_write(config: Config, client: str, upstream: str | None, email: str, scim_id: str) -> None:
    """403 (with an audit event) when the client may not write a user with this address."""
    if may_write(config, upstream, email):
        return
    domain = email_domain(email)
    refused = ScimRefused(
        403, None, f"this SCIM client may not provision {domain} addresses",
        f"SCIM client {client} (upstream {upstream or 'none'}) may not write {email}: "
        + (f"its upstream's email_domains do not include {domain}" if upstream
           else f"{domain} belongs to upstream {', '.join(owners_of(config, email))}"),
    )  # fmt: skip
    audit("trust.refused", check="scim_email_domain", client=client, upstream=upstream, scim_id=scim_id,
          email=email, reference=refused.reference)  # fmt: skip
    raise refused


class AccountLinks:
    """The portals' first-upstream records (`keys.first_upstream`, shared with the login) as SCIM uses them."""

    def __init__(self, config: Config, store: Store, client: str, upstream: str | None):
        self.config = config
        self.store = store
        self.client = client
        self.upstream = upstream

    def first(self, portal: str, email: str) -> str | None:
        raw = self.store.get(keys.first_upstream(portal, email))
        return raw.decode() if raw is not None else None

    def may_take(self, portal: str, email: str) -> bool:
        """The client may bring (create, adopt, rename to or from) this address in this portal."""
        first = self.first(portal, email)
        if first is None or first == self.upstream:
            return True
        return self.upstream is not None and self.config.portals[portal].account_linking == "allow"

    def check(self, portal: str, email: str, what: str) -> None:
        """409 (with an audit event) when another upstream brought the address to the portal first."""
        if self.may_take(portal, email):
            return
        refused = ScimRefused(
            409, "uniqueness", "the address is not available to this SCIM client in a LearnUpon portal",
            f"{what}: {email} first came to portal {portal} through upstream {self.first(portal, email)}, not "
            f"{self.upstream or '(a SCIM client without upstream)'}; account_linking does not allow linking",
        )  # fmt: skip
        audit("trust.refused", check="scim_account_linking", client=self.client, upstream=self.upstream,
              portal=portal, email=email, reference=refused.reference)  # fmt: skip
        raise refused

    def record(self, portal: str, email: str) -> None:
        """This client's upstream brought the address to the portal (kept only when no other did first)."""
        if self.upstream is not None:
            self.store.claim(
                keys.first_upstream(portal, email), self.upstream.encode(), FIRST_UPSTREAM_TTL_SECONDS
            )

    def move(self, portal: str, old: str, new: str) -> None:
        """After a rename: the new address is this upstream's, the old one no longer names this account."""
        if old.strip().lower() == new.strip().lower():
            return
        self.record(portal, new)
        if self.upstream is not None and self.first(portal, old) == self.upstream:
            self.store.delete(keys.first_upstream(portal, old))
