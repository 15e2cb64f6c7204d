"""The login, start to finish, as a short sequence of named steps over plain data.

    start_login:    portal → pending login in the store → AuthnRequest redirect to the upstream IdP
    complete_login: validate → consume once → map claims → resolve groups → route → provision → issue

Each step is a small function that can be tested alone; later steps (group resolution, provisioning)
plug in here, in order, where a reader of this module sees them.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from broker.claims.groups import resolve_groups
from broker.claims.presets import groups_overage_signalled, map_claims
from broker.claims.profile import outgoing_attributes
from broker.errors import LoginRefused, SamlRejected
from broker.model import Claims, Identity, OutgoingLogin, PendingLogin
from broker.provisioning.sync import SyncOutcome, sync_user
from broker.runtime import Runtime
from broker.saml.assertion import issue_response
from broker.saml.authn_request import build_authn_request, new_request_id, redirect_url
from broker.saml.response import Expectations, ValidatedResponse, validate_response
from broker.targets import safe_target

log = logging.getLogger("broker.login")

Trace = Callable[[str, str], None]


class UnknownPortal(LoginRefused):
    status_code = 404
    public_message = "This sign-in link does not match any learning portal. Please check the address."


class LoginExpired(LoginRefused):
    status_code = 400
    public_message = "This sign-in has expired or was already used. Please start again from your bookmark."


def _no_trace(check: str, detail: str) -> None:
    return None


def _pending_key(relay_state: str) -> str:
    return f"login:{relay_state}"


# --- start ------------------------------------------------------------------------------------------------


def start_login(rt: Runtime, portal: str, target: str | None = None) -> str:
    """Remember the login server-side and return the upstream IdP URL to redirect the browser to."""
    settings = rt.config.portals.get(portal)
    if settings is None:
        raise UnknownPortal(f"unknown portal {portal!r}")
    checked_target = safe_target(target)
    if target and checked_target is None:
        raise LoginRefused(
            f"unsafe target {target[:80]!r}", public_message="This link's target page is not allowed."
        )
    upstream_name = settings.upstream
    upstream = rt.upstreams[upstream_name]
    upstream_settings = rt.config.upstreams[upstream_name]
    pending = PendingLogin(new_request_id(), upstream_name, portal, checked_target, time.time())
    # RelayState is only a random key (43 characters, under SAML's 80-byte limit); the state stays with us.
    relay_state = secrets.token_urlsafe(32)
    rt.store.put(
        _pending_key(relay_state), json.dumps(pending.__dict__).encode(), rt.config.broker.login_ttl_seconds
    )
    request = build_authn_request(
        request_id=pending.request_id,
        issuer=rt.config.broker.sp_entity,
        destination=upstream.sso_url,
        acs_url=rt.config.broker.acs_url,
        now=rt.clock(),
        name_id_format=upstream_settings.name_id_format,
    )
    signing_key = rt.broker_keys if upstream.want_authn_requests_signed else None
    return redirect_url(upstream.sso_url, request, relay_state, signing_key=signing_key)


# --- complete ---------------------------------------------------------------------------------------------


def complete_login(
    rt: Runtime, saml_response: str, relay_state: str | None, trace: Trace = _no_trace
) -> OutgoingLogin:
    pending = find_pending(rt, relay_state)
    validated = validate(rt, saml_response, pending, trace)
    consume(rt, validated, relay_state)
    identity = validated.identity
    claims = map_claims(identity, rt.claim_names[identity.upstream])
    claims = resolve_group_names(rt, identity, claims, trace)
    portal = choose_portal(rt, pending, claims)
    provision(rt, portal, claims, trace)
    outgoing = issue(rt, portal, identity, claims, pending.target)
    log.info(
        "login completed",
        extra={"portal": portal, "upstream": identity.upstream, "assertion_id": outgoing.assertion_id},
    )
    return outgoing


def find_pending(rt: Runtime, relay_state: str | None) -> PendingLogin:
    if not relay_state or len(relay_state) > 80:
        raise LoginExpired("RelayState missing or too long: not a login this broker started")
    raw = rt.store.get(_pending_key(relay_state))
    if raw is None:
        raise LoginExpired("no pending login for this RelayState (expired, already used, or never started)")
    return PendingLogin(**json.loads(raw))


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


def consume(rt: Runtime, validated: ValidatedResponse, relay_state: str | None) -> None:
    """Record the assertion ID (replay cache, shared by replicas) and delete the pending request: once only."""
    identity = validated.identity
    ttl = max(1, int((validated.replay_until - rt.clock()).total_seconds()) + 1)
    if not rt.store.add(f"assertion:{identity.issuer}:{identity.assertion_id}", b"1", ttl):
        raise SamlRejected("replay", "this assertion was already used", got=identity.assertion_id)
    if relay_state is None or rt.store.take(_pending_key(relay_state)) is None:
        raise SamlRejected("in_response_to", "the pending request was consumed by another response")


def resolve_group_names(rt: Runtime, identity: Identity, claims: Claims, trace: Trace = _no_trace) -> Claims:
    """Entra group GUIDs → names (static map, cache, Graph); names from other IdPs pass through."""
    settings = rt.config.upstreams[identity.upstream].groups
    names = rt.claim_names[identity.upstream]
    result = resolve_groups(
        claims.groups,
        object_id=claims.object_id,
        overage_signalled=groups_overage_signalled(identity, names),
        settings=settings,
        store=rt.store,
        graph_client=rt.group_directories.get(identity.upstream),
    )
    for record in result.records:
        trace("groups", f"{record.value} → {record.name or '(unresolved)'} [{record.source}]")
    return replace(claims, groups=result.names)


def choose_portal(rt: Runtime, pending: PendingLogin, claims: Claims) -> str:
    if pending.portal is None or pending.portal not in rt.config.portals:
        raise UnknownPortal(f"pending login names no known portal ({pending.portal!r})")
    return pending.portal


def provision(rt: Runtime, portal: str, claims: Claims, trace: Trace = _no_trace) -> SyncOutcome | None:
    """Create or update the user and their groups in LearnUpon before the assertion lands (when enabled).
    Under the portal's `block` policy a failure stops the login; under `continue` LearnUpon's JIT takes over."""
    client = rt.learnupon_clients.get(portal)
    if client is None:
        return None
    outcome = sync_user(portal, claims, rt.config.portals[portal].provisioning, client, rt.store)
    trace(
        "provisioning", f"{outcome.status}: {len(outcome.calls)} change(s), {outcome.requests} API request(s)"
    )
    return outcome


def issue(rt: Runtime, portal: str, identity: Identity, claims: Claims, target: str | None) -> OutgoingLogin:
    trust = rt.portal_trust[portal]
    attributes = outgoing_attributes(claims, rt.config.portals[portal])
    issued = issue_response(
        trust,
        claims.email,
        attributes,
        now=rt.clock(),
        authn_instant=identity.authn_instant,
        session_index=identity.session_index,
    )
    return OutgoingLogin(portal, trust.acs_url, issued.saml_response, target, issued.assertion_id)
