"""Several portals are open to the user: hold the signed-in login in the store while they pick one.

The same held shape (`HeldLogin`) lets the admin's trace page continue a test login to the portal."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from broker.errors import LoginRefused
from broker.model import Claims, Identity, OutgoingLogin
from broker.pending import LoginExpired
from broker.runtime import Runtime
from broker.store import keys

PICK_TTL_SECONDS = 300


class PortalNotOffered(LoginRefused):
    """The portal picker's answer names a portal that was not among those offered."""

    check = "portal_not_offered"


@dataclass(frozen=True)
class PortalChoice:
    """Several portals are open to this user: the browser shows a picker. The held login is keyed by
    `token` and bound to this browser by `browser_nonce` (a cookie), so a picker link cannot be planted."""

    token: str
    browser_nonce: str
    portals: tuple[str, ...]
    account: str = ""  # who signed in (shown on the picker)


@dataclass(frozen=True)
class HeldLogin:
    """What must be kept to finish a login later (after the picker, or the trace page's Continue)."""

    identity: Identity
    claims: Claims
    target: str | None
    portal: str | None = None  # the trace page's portal; the picker's comes from the user

    def to_json(self) -> dict[str, Any]:
        instant = self.identity.authn_instant.isoformat() if self.identity.authn_instant else None
        return {
            # the upstream's raw attributes are not kept: the claims carry what later steps read
            "identity": {**asdict(self.identity), "attributes": {}, "authn_instant": instant},
            "claims": asdict(self.claims),
            "target": self.target,
            "portal": self.portal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeldLogin:
        identity_data = dict(data["identity"])
        instant = identity_data.pop("authn_instant")
        identity = Identity(
            **identity_data, authn_instant=datetime.fromisoformat(instant) if instant else None
        )
        claims_data = data["claims"]
        claims = Claims(**{**claims_data, "groups": tuple(claims_data["groups"]),
                           "group_ids": tuple(claims_data.get("group_ids", ())),
                           "extra": {k: tuple(v) for k, v in claims_data["extra"].items()}})  # fmt: skip
        return cls(identity, claims, data["target"], data.get("portal"))


def hold_for_choice(rt: Runtime, portals: tuple[str, ...], held: HeldLogin) -> PortalChoice:
    token, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    record = {
        "portals": portals,
        "nonce_sha256": hashlib.sha256(nonce.encode()).hexdigest(),
        **held.to_json(),
    }
    rt.store.put(keys.held_choice(token), json.dumps(record).encode(), PICK_TTL_SECONDS)
    return PortalChoice(token, nonce, portals, held.claims.email)


def take_choice(rt: Runtime, token: str, browser_nonce: str | None, portal: str) -> HeldLogin:
    """The picker's answer: the held login (once only, from the browser it was shown to) for `portal`."""
    raw = rt.store.take(keys.held_choice(token)) if token and len(token) <= 64 else None
    if raw is None:
        raise LoginExpired("portal choice expired or already used")
    record = json.loads(raw)
    given = hashlib.sha256((browser_nonce or "").encode()).hexdigest()
    if not hmac.compare_digest(record["nonce_sha256"], given):
        raise LoginExpired("portal choice made from another browser")
    if portal not in record["portals"]:
        raise PortalNotOffered(f"portal {portal!r} was not offered")
    held = HeldLogin.from_json(record)
    return HeldLogin(held.identity, held.claims, held.target, portal)


CONTINUE_TTL_SECONDS = 120


def hold_outgoing(rt: Runtime, outgoing: OutgoingLogin) -> tuple[str, str]:
    """The picker answers its POST with 303 (Back never resubmits it): the signed assertion waits here, once only,
    for the GET that posts it to the portal. Returns the token (in the URL) and the browser's nonce (a cookie)."""
    token, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    record = {"nonce_sha256": hashlib.sha256(nonce.encode()).hexdigest(), **asdict(outgoing)}
    rt.store.put(keys.held_outgoing(token), json.dumps(record).encode(), CONTINUE_TTL_SECONDS)
    return token, nonce


def take_outgoing(rt: Runtime, token: str, browser_nonce: str | None) -> OutgoingLogin | None:
    """The held assertion for this browser, once; None when it was used, expired or belongs to another browser."""
    if not token or len(token) > 64:
        return None
    raw = rt.store.take(keys.held_outgoing(token))
    if raw is None:
        return None
    record = json.loads(raw)
    given = hashlib.sha256((browser_nonce or "").encode()).hexdigest()
    if not hmac.compare_digest(record.pop("nonce_sha256"), given):
        return None
    return OutgoingLogin(**{**record, "groups_sent": tuple(record.get("groups_sent", ()))})
