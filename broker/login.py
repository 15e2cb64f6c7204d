"""The login, start to finish, as a short sequence of named steps over plain data.

    start_login:    portal and upstream → pending login in the store → AuthnRequest redirect to the IdP
    complete_login: find pending → validate → consume once → map claims → resolve groups → route
                    → provision → issue the portal's assertion   (or a portal picker when several match)
    choose_portal:  the picker's answer → provision → issue

Each step is a small function that can be tested alone, and every step is called from here, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import wraps

from broker.claims.groups import resolve_groups
from broker.claims.presets import groups_overage_signalled, is_email, map_claims
from broker.claims.profile import outgoing_attributes
from broker.errors import LoginRefused, SamlRejected
from broker.model import Claims, Identity, OutgoingLogin, PendingLogin
from broker.ops.audit import audit
from broker.ops.observability import request_id
from broker.provisioning.sync import SyncOutcome, sync_user
from broker.rules import trust
from broker.rules.routing import route, target_allowed
from broker.rules.targets import safe_target
from broker.runtime import Runtime
from broker.saml.assertion import issue_response
from broker.saml.authn_request import build_authn_request, new_request_id, redirect_url
from broker.saml.response import Expectations, ValidatedResponse, peek, validate_response

log = logging.getLogger("broker.login")

Trace = Callable[[str, str], None]
PICK_TTL_SECONDS = 300
FIRST_UPSTREAM_TTL_SECONDS = 400 * 86400  # renewed on every login


class UnknownPortal(LoginRefused):
    status_code = 404
    check = "unknown_portal"
    public_message = "This sign-in link does not match any learning portal. Please check the address."


class LoginExpired(LoginRefused):
    status_code = 400
    check = "expired"
    public_message = "This sign-in has expired or was already used. Please start again from your bookmark."


@dataclass(frozen=True)
class PortalChoice:
    """Several portals are open to this user: the browser shows a picker. The held login is keyed by
    `token` and bound to this browser by `browser_nonce` (a cookie), so a picker link cannot be planted."""

    token: str
    browser_nonce: str
    portals: tuple[str, ...]


def _no_trace(check: str, detail: str) -> None:
    return None


def timed(step: str):
    """Record a step's duration in the per-step latency histogram (the step's first argument is the runtime)."""

    def decorate(function):
        @wraps(function)
        def run(rt: Runtime, *args, **kwargs):
            with rt.metrics.step(step):
                return function(rt, *args, **kwargs)

        return run

    return decorate


def _pending_key(relay_state: str) -> str:
    return f"login:{relay_state}"


# --- start ------------------------------------------------------------------------------------------------


def start_login(
    rt: Runtime,
    portal: str | None,
    upstream: str,
    target: str | None = None,
    login_hint: str | None = None,
    purpose: str = "login",
    browser: str | None = None,
) -> str:
    """Remember the login server-side and return the upstream IdP URL to redirect the browser to.
    `browser`: the hash of the starting browser's binding cookie; the response must come back with it."""
    if portal is not None and portal not in rt.config.portals:
        raise UnknownPortal(f"unknown portal {portal!r}")
    if upstream not in rt.upstreams or (
        portal is not None and upstream not in rt.config.portals[portal].upstream_names
    ):
        raise LoginRefused(f"upstream {upstream!r} not offered for portal {portal!r}",
                           public_message="This sign-in option is not available here.")  # fmt: skip
    checked_target = check_target(rt, portal, target)
    pending = PendingLogin(new_request_id(), upstream, portal, checked_target, time.time(), purpose, browser)
    # RelayState is only a random key (43 characters, under SAML's 80-byte limit); the state stays with us.
    relay_state = secrets.token_urlsafe(32)
    rt.store.put(
        _pending_key(relay_state), json.dumps(asdict(pending)).encode(), rt.config.broker.login_ttl_seconds
    )
    idp = rt.upstreams[upstream]
    request = build_authn_request(
        request_id=pending.request_id,
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
    return redirect_url(idp.sso_url, request, relay_state, signing_key=signing_key, extra_params=extra)


def check_target(rt: Runtime, portal: str | None, target: str | None) -> str | None:
    """A deep link is a safe relative path, allowed by the portal's patterns (checked again after routing)."""
    if not target:
        return None
    checked = safe_target(target)
    if checked is None or (portal is not None and not target_allowed(rt.config.portals[portal], checked)):
        raise LoginRefused(
            f"target not allowed: {target[:80]!r}", public_message="This link's target page is not allowed."
        )
    return checked


# --- complete ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A validated, consumed upstream response: who signed in, for which pending login."""

    pending: PendingLogin
    identity: Identity
    claims: Claims


def receive(
    rt: Runtime,
    saml_response: str,
    relay_state: str | None,
    trace: Trace = _no_trace,
    pending: PendingLogin | None = None,
) -> Received:
    """The first half of every login (also the admin's and the flow tester's): validate, consume, map."""
    pending = pending or find_pending(rt, relay_state) or unsolicited_login(rt, saml_response, relay_state)
    validated = validate(rt, saml_response, pending, trace)
    consume(rt, validated, relay_state if pending.request_id else None)
    identity = validated.identity
    claims = map_claims(identity, rt.claim_names[identity.upstream])
    trace("claims", f"mapped with the {rt.config.upstreams[identity.upstream].preset} preset: {claims.email}")
    check_trust(rt, identity, claims, trace)
    claims = resolve_group_names(rt, identity, claims, trace)
    return Received(pending, identity, claims)


def complete_login(
    rt: Runtime,
    saml_response: str,
    relay_state: str | None,
    trace: Trace = _no_trace,
    pending: PendingLogin | None = None,
) -> OutgoingLogin | PortalChoice:
    received = receive(rt, saml_response, relay_state, trace, pending)
    pending, identity, claims = received.pending, received.identity, received.claims
    decision = route(rt.config, pending.portal, identity.upstream, claims)
    trace("routing", f"{', '.join(decision.portals)}: {decision.reason}")
    if len(decision.portals) > 1:
        return hold_for_choice(rt, decision.portals, identity, claims, pending.target)
    return finish_login(rt, decision.portals[0], identity, claims, pending.target, trace)


def finish_login(
    rt: Runtime, portal: str, identity: Identity, claims: Claims, target: str | None, trace: Trace = _no_trace
) -> OutgoingLogin:
    check_account_link(rt, portal, identity.upstream, claims.email)
    outcome = provision(rt, portal, claims, trace)
    outgoing = issue(rt, portal, identity, claims, target)
    rt.metrics.logins_completed.labels(portal, identity.upstream).inc()
    audit("login", upstream=identity.upstream, portal=portal, email=claims.email, groups=list(outgoing.groups_sent),
          provisioning=outcome.status if outcome else "off", assertion_id=outgoing.assertion_id,
          reference=request_id.get())  # fmt: skip
    return outgoing


def find_pending(rt: Runtime, relay_state: str | None) -> PendingLogin | None:
    if not relay_state or len(relay_state) > 80:
        return None
    raw = rt.store.get(_pending_key(relay_state))
    return PendingLogin(**json.loads(raw)) if raw is not None else None


def unsolicited_login(rt: Runtime, saml_response: str, relay_state: str | None) -> PendingLogin:
    """An IdP-initiated response (e.g. a tile in Entra My Apps): refused unless its upstream allows it,
    then routed by RelayState (a portal name) or the upstream's default portal."""
    issuer, in_response_to = peek(saml_response, rt.config.broker.max_response_bytes)
    if in_response_to is not None or issuer is None:
        raise LoginExpired("no pending login for this RelayState (expired, already used, or never started)")
    upstream = next((name for name, idp in rt.upstreams.items() if idp.entity_id == issuer), None)
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


@timed("validate")
def validate(
    rt: Runtime, saml_response: str, pending: PendingLogin, trace: Trace = _no_trace
) -> ValidatedResponse:
    broker = rt.config.broker
    expectations = Expectations(
        upstream_name=pending.upstream,
        upstream=rt.upstreams[pending.upstream],
        sp_entity_id=broker.sp_entity,
        acs_url=broker.acs_url,
        request_id=pending.request_id,
        now=rt.clock(),
        skew=rt.skew,
        max_bytes=broker.max_response_bytes,
        allow_sha1=rt.config.upstreams[pending.upstream].allow_sha1,
    )
    return validate_response(saml_response, expectations, trace)


@timed("consume")
def consume(rt: Runtime, validated: ValidatedResponse, relay_state: str | None) -> None:
    """Record the assertion ID (replay cache, shared by replicas) and delete the pending request: once only."""
    identity = validated.identity
    ttl = max(1, int((validated.replay_until - rt.clock()).total_seconds()) + 1)
    if not rt.store.add(f"assertion:{identity.issuer}:{identity.assertion_id}", b"1", ttl):
        rt.metrics.replay_rejections.inc()
        raise SamlRejected("replay", "this assertion was already used", got=identity.assertion_id)
    if relay_state is not None and rt.store.take(_pending_key(relay_state)) is None:
        raise SamlRejected("in_response_to", "the pending request was consumed by another response")


def check_trust(rt: Runtime, identity: Identity, claims: Claims, trace: Trace = _no_trace) -> None:
    """The upstream may only sign in addresses of its own e-mail domains (before any Graph call)."""
    upstream = identity.upstream
    try:
        trust.check_email_domain(upstream, rt.config.upstreams[upstream], claims.email)
    except trust.EmailDomainRefused:
        audit("trust.refused", check="email_domain", upstream=upstream, email=claims.email,
              reference=request_id.get())  # fmt: skip
        raise
    trace("trust", f"{upstream} may assert {trust.email_domain(claims.email)} addresses")


def _first_upstream_key(portal: str, email: str) -> str:
    return f"firstupstream:{portal}:{email.lower()}"


def check_account_link(rt: Runtime, portal: str, upstream: str, email: str, *, record: bool = True) -> None:
    """The first upstream that brings an address to a portal keeps it; another one is refused (per portal
    `account_linking`). The record is kept a year past each login; `record=False` only looks (flow tester)."""
    key = _first_upstream_key(portal, email)
    if record and rt.store.add(key, upstream.encode(), FIRST_UPSTREAM_TTL_SECONDS):
        return
    raw = rt.store.get(key)
    first = raw.decode() if raw is not None else None
    try:
        trust.check_account_link(portal, rt.config.portals[portal], first, upstream)
    except trust.AccountLinkRefused:
        audit("trust.refused", check="account_linking", upstream=upstream, first_upstream=first, portal=portal,
              email=email, reference=request_id.get())  # fmt: skip
        raise
    if record and first == upstream:
        rt.store.put(key, upstream.encode(), FIRST_UPSTREAM_TTL_SECONDS)


@timed("groups")
def resolve_group_names(rt: Runtime, identity: Identity, claims: Claims, trace: Trace = _no_trace) -> Claims:
    """Entra group GUIDs → names (static map, cache, Graph); names from other IdPs pass through."""
    settings = rt.config.upstreams[identity.upstream].groups
    result = resolve_groups(
        claims.groups,
        object_id=claims.object_id,
        overage_signalled=groups_overage_signalled(identity, rt.claim_names[identity.upstream]),
        settings=settings,
        store=rt.store,
        graph_client=rt.group_directories.get(identity.upstream),
    )
    for source, count in Counter(record.source for record in result.records).items():
        rt.metrics.group_names.labels(source).inc(count)
    for record in result.records:
        trace("groups", f"{record.value} → {record.name or '(unresolved)'} [{record.source}]")
    # Object ids count only from Entra (signed by the tenant, or Graph's answer for this user's object id)
    ids = (
        tuple(r.value.lower() for r in result.records if trust.is_object_id(r.value))
        if rt.config.upstreams[identity.upstream].preset == "entra"
        else ()
    )
    return replace(claims, groups=result.names, group_ids=ids)


# --- several portals: hold the login, let the user pick -----------------------------------------------------


def _held_key(token: str) -> str:
    return f"pick:{token}"


def hold_for_choice(
    rt: Runtime, portals: tuple[str, ...], identity: Identity, claims: Claims, target: str | None
) -> PortalChoice:
    token, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    held = {
        "portals": portals,
        "nonce_sha256": hashlib.sha256(nonce.encode()).hexdigest(),
        **held_login(identity, claims, target),
    }
    rt.store.put(_held_key(token), json.dumps(held).encode(), PICK_TTL_SECONDS)
    return PortalChoice(token, nonce, portals)


def held_login(identity: Identity, claims: Claims, target: str | None) -> dict:
    """What must be kept (JSON) to finish a login later: the picker, the flow tester's continue button."""
    instant = identity.authn_instant.isoformat() if identity.authn_instant else None
    return {
        "identity": {**asdict(identity), "attributes": {}, "authn_instant": instant},
        "claims": asdict(claims),
        "target": target,
    }


def restore_login(held: dict) -> tuple[Identity, Claims, str | None]:
    identity_data = dict(held["identity"])
    instant = identity_data.pop("authn_instant")
    identity = Identity(**identity_data, authn_instant=datetime.fromisoformat(instant) if instant else None)
    claims_data = held["claims"]
    claims = Claims(**{**claims_data, "groups": tuple(claims_data["groups"]),
                       "group_ids": tuple(claims_data.get("group_ids", ())),
                       "extra": {k: tuple(v) for k, v in claims_data["extra"].items()}})  # fmt: skip
    return identity, claims, held["target"]


def choose_portal(
    rt: Runtime, token: str, browser_nonce: str | None, portal: str, trace: Trace = _no_trace
) -> OutgoingLogin:
    raw = rt.store.take(_held_key(token)) if token and len(token) <= 64 else None
    if raw is None:
        raise LoginExpired("portal choice expired or already used")
    held = json.loads(raw)
    expected = held["nonce_sha256"]
    given = hashlib.sha256((browser_nonce or "").encode()).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise LoginExpired("portal choice made from another browser")
    if portal not in held["portals"]:
        raise LoginRefused(
            f"portal {portal!r} was not offered", public_message="That portal was not offered to you."
        )
    identity, claims, target = restore_login(held)
    trace("routing", f"{portal}: chosen on the portal picker")
    return finish_login(rt, portal, identity, claims, target, trace)


# --- the last two steps ---------------------------------------------------------------------------------------


@timed("provision")
def provision(rt: Runtime, portal: str, claims: Claims, trace: Trace = _no_trace) -> SyncOutcome | None:
    """Create or update the user and their groups in LearnUpon before the assertion lands (when enabled).
    Under the portal's `block` policy a failure stops the login; under `continue` LearnUpon's JIT takes over."""
    client = rt.learnupon_clients.get(portal)
    if client is None:
        return None
    outcome = sync_user(portal, claims, rt.config.portals[portal].provisioning, client, rt.store)
    rt.metrics.provisioning.labels(portal, outcome.status).inc()
    trace(
        "provisioning", f"{outcome.status}: {len(outcome.calls)} change(s), {outcome.requests} API request(s)"
    )
    return outcome


@timed("issue")
def issue(rt: Runtime, portal: str, identity: Identity, claims: Claims, target: str | None) -> OutgoingLogin:
    settings = rt.config.portals[portal]
    if target is not None and not target_allowed(settings, target):
        log.info("deep link %r not allowed for portal %s: sending the landing path", target, portal)
        target = None
    trust = rt.portal_trust[portal]
    attributes = outgoing_attributes(claims, settings)
    issued = issue_response(
        trust,
        claims.email,
        attributes,
        now=rt.clock(),
        authn_instant=identity.authn_instant,
        session_index=identity.session_index,
    )
    relay_state = target or settings.landing_path
    groups_sent = attributes.get(settings.attributes.groups or "", ())
    return OutgoingLogin(
        portal, trust.acs_url, issued.saml_response, relay_state, issued.assertion_id, groups_sent
    )
