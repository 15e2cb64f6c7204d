"""Plain data passed between the login steps. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# Why a login was started: a user's login; the admin's flow tester ("test"); an administrator signing in.
Purpose = Literal["login", "test", "admin"]


@dataclass(frozen=True)
class Identity:
    """What a validated upstream assertion says about the user, read only from signed XML."""

    upstream: str
    issuer: str
    assertion_id: str
    name_id: str
    name_id_format: str | None
    attributes: dict[str, tuple[str, ...]]
    authn_instant: datetime | None = None
    session_index: str | None = None
    in_response_to: str | None = None


@dataclass(frozen=True)
class Claims:
    """The canonical user: one vocabulary whatever the upstream IdP calls things."""

    email: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    groups: tuple[str, ...] = ()
    # False when group resolution was incomplete (Graph down, throttled, out of time): `groups` may lack some,
    # so no membership may be removed because of this login
    groups_complete: bool = True
    subject: str = ""
    object_id: str = ""
    department: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Entra group object ids as signed by the tenant (or read from Graph for this user): only these match
    # object-id rules. Empty for upstreams that send names, so a group named like an id matches nothing.
    group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingLogin:
    """Server-side state of a login between the redirect to the IdP and the response (keyed by RelayState)."""

    request_id: str | None  # None: an IdP-initiated (unsolicited) login
    upstream: str
    portal: str | None
    target: str | None
    created: float
    purpose: Purpose = "login"
    browser: str | None = None  # sha256 of the binding cookie of the browser that started it (login CSRF)


@dataclass(frozen=True)
class OutgoingLogin:
    """The signed assertion for a portal, ready to be auto-posted by the browser."""

    portal: str
    acs_url: str
    saml_response: str  # base64 of the signed Response
    relay_state: str | None
    assertion_id: str
    groups_sent: tuple[str, ...] = ()
