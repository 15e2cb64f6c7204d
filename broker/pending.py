"""The first half of a login: remember it server-side and send the browser to the upstream IdP; later, find
that pending login again from the response's RelayState (or accept an allowed IdP-initiated response)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from broker.claims.presets import is_email
from broker.errors import LoginRefused, SamlRejected
from broker.model import PendingLogin, Purpose
from broker.rules.routing import target_allowed
from broker.rules.targets import safe_target
from broker.runtime import Runtime
from broker.saml.authn_request import UpstreamRequest, build_authn_request, new_request_id, upstream_request
from broker.saml.response import ASSERTION, ISSUER, peek
from broker.saml.xml import UnsafeXml, decode_base64, parse_untrusted, text_of
from broker.store import keys


class UnknownPortal(LoginRefused):
    """The sign-in link names no portal of this broker."""

    check = "unknown_portal"


class LoginExpired(LoginRefused):
    """The pending login (or the portal choice) is gone: expired, or already used."""

    check = "expired"


class UpstreamNotOffered(LoginRefused):
    """The sign-in asks for an upstream IdP the portal does not offer."""

    check = "upstream_not_offered"


class TargetNotAllowed(LoginRefused):
    """The deep link is not a safe relative path, or the portal's patterns do not allow it."""

    check = "target"


class OtherBrowser(LoginRefused):
    """The response came back in another browser than the one that started the login (login CSRF)."""

    check = "browser"


# Back from the portal can bring the IdP's page, and its response, again: for this long the broker knows
# which login to start afresh instead of showing "expired".
RESTART_TTL_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Restart:
    """Enough of a used (or expired) pending login to start the same login again."""

    portal: str | None
    upstream: str
    target: str | None
    browser: str | None


def find_restart(rt: Runtime, relay_state: str | None) -> Restart | None:
    """What a used (or expired) login `relay_state` named, for a browser that comes back with it."""
    if not relay_state or len(relay_state) > 80:
        return None
    raw = rt.store.get(keys.login_restart(relay_state))
    if raw is None:
        return None
    try:
        return Restart(**json.loads(raw))
    except (TypeError, ValueError):
        return None  # written by another version of the broker (a rolling deploy): no restart, no 500


def peek_assertion(saml_response: str, max_bytes: int) -> tuple[str | None, str | None]:
    """The assertion's Issuer and ID as posted, unverified (see `already_used`)."""
    root = parse_untrusted(decode_base64(saml_response, max_bytes=max_bytes))
    assertion = root.find(ASSERTION)
    if assertion is None:
        return None, None
    issuer = assertion.find(ISSUER)
    if issuer is None or len(issuer):
        # a comment (or anything) inside the Issuer: never compare a part of it; the caller refuses it
        return None, assertion.get("ID")
    return text_of(issuer).strip(), assertion.get("ID")


def already_used(rt: Runtime, saml_response: str) -> bool:
    """An exact re-post of a used assertion (a replay, refused) rather than a new response (a second sign-in at
    the IdP after Back, started again). Unverified issuer and ID: this only chooses between two refusals of
    the response itself — neither lets anyone in."""
    try:
        issuer, assertion_id = peek_assertion(saml_response, rt.config.broker.max_response_bytes)
    except UnsafeXml:
        return True  # refused by the login's own checks, with their precise reason
    if not issuer or not assertion_id:
        return True
    return rt.store.get(keys.used_assertion(issuer, assertion_id)) is not None


def start_login(
    rt: Runtime,
    portal: str | None,
    upstream: str,
    target: str | None = None,
    login_hint: str | None = None,
    purpose: Purpose = "login",
    browser: str | None = None,
) -> UpstreamRequest:
    """Remember the login server-side and return how to send the browser to the upstream IdP.
    `browser`: the hash of the starting browser's binding cookie; the response must come back with it."""
    if portal is not None and portal not in rt.config.portals:
        raise UnknownPortal(f"unknown portal {portal!r}")
    if upstream not in rt.upstreams or (
        portal is not None and upstream not in rt.config.portals[portal].upstream_names
    ):
        raise UpstreamNotOffered(f"upstream {upstream!r} not offered for portal {portal!r}")
    checked_target = check_target(rt, portal, target)
    request_id = new_request_id()
    pending = PendingLogin(request_id, upstream, portal, checked_target, time.time(), purpose, browser)
    # RelayState is only a random key (43 characters, under SAML's 80-byte limit); the state stays with us.
    relay_state = secrets.token_urlsafe(32)
    records = [(keys.pending_login(relay_state), json.dumps(asdict(pending)).encode(),
                rt.config.broker.login_ttl_seconds)]  # fmt: skip
    if purpose == "login":
        restart = {"portal": portal, "upstream": upstream, "target": checked_target, "browser": browser}
        records.append((keys.login_restart(relay_state), json.dumps(restart).encode(), RESTART_TTL_SECONDS))
    rt.store.put_many(records)  # one round trip for both
    idp = rt.upstreams[upstream].idp
    request = build_authn_request(
        request_id=request_id,
        issuer=rt.config.broker.sp_entity,
        destination=idp.sso_url,
        acs_url=rt.config.broker.acs_url,
        now=rt.clock(),
        name_id_format=rt.config.upstreams[upstream].name_id_format,
    )
    extra = None
    if login_hint and rt.config.upstreams[upstream].preset == "entra" and is_email(login_hint):
        extra = {"login_hint": login_hint}  # Entra pre-fills the account; a SAML Subject is not allowed
    signing_key = rt.broker_keys if idp.want_authn_requests_signed else None
    rt.metrics.logins_started.labels(portal or "-", upstream).inc()
    return upstream_request(
        idp.sso_url, idp.sso_binding, request, relay_state, signing_key=signing_key, extra_params=extra
    )


def check_target(rt: Runtime, portal: str | None, target: str | None) -> str | None:
    """A deep link is a safe relative path, allowed by the portal's patterns (checked again after routing)."""
    if not target:
        return None
    checked = safe_target(target)
    if checked is None or (portal is not None and not target_allowed(rt.config.portals[portal], checked)):
        raise TargetNotAllowed(f"target not allowed: {target[:80]!r}")
    return checked


def pending_key(relay_state: str | None) -> str | None:
    """The store key of the pending login a RelayState names (None: it cannot name one)."""
    if not relay_state or len(relay_state) > 80:
        return None
    return keys.pending_login(relay_state)


def find_pending(
    rt: Runtime, relay_state: str | None, read: Callable[[str], bytes | None] | None = None
) -> PendingLogin | None:
    """`read`: how to read the key, when not from the store (the ACS has it already, see web.ratelimit)."""
    key = pending_key(relay_state)
    if key is None:
        return None
    raw = (read or rt.store.get)(key)
    if raw is None:
        return None
    try:
        return PendingLogin(**json.loads(raw))
    except (TypeError, ValueError):
        return None  # written by another version of the broker (a rolling deploy): as if expired, no 500


def unsolicited_login(rt: Runtime, saml_response: str, relay_state: str | None) -> PendingLogin:
    """An IdP-initiated response (e.g. a tile in Entra My Apps): refused unless its upstream allows it,
    then routed by RelayState (a portal name) or the upstream's default portal."""
    issuer, in_response_to = peek(saml_response, rt.config.broker.max_response_bytes)
    if in_response_to is not None or issuer is None:
        raise LoginExpired("no pending login for this RelayState (expired, already used, or never started)")
    upstream = next((name for name, u in rt.upstreams.items() if u.entity_id == issuer), None)
    if upstream is None:
        raise SamlRejected("issuer", "unsolicited response from an unknown issuer", got=issuer)
    settings = rt.config.upstreams[upstream]
    if not settings.allow_unsolicited:
        raise SamlRejected("unsolicited", f"IdP-initiated logins from upstream {upstream} are not allowed")
    portal = relay_state or settings.default_portal
    if portal not in rt.config.portals or upstream not in rt.config.portals[portal].upstream_names:
        raise SamlRejected(
            "unsolicited", "RelayState names no portal that accepts this upstream", got=relay_state
        )
    return PendingLogin(None, upstream, portal, None, time.time())
