"""The login's steps (their order is broker.login.STEPS). Each takes a `LoginRun` and returns a copy with its
result filled in; `run.mode` says whether it may write or call out."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from broker.claims import presets
from broker.claims.groups import UnreachableDirectory
from broker.claims.groups import resolve_groups as resolve_group_values
from broker.claims.profile import outgoing_attributes
from broker.errors import SamlRejected
from broker.jobs.queue import enqueue_converge
from broker.login_run import LoginRun, Mode
from broker.login_run import required as _required
from broker.model import Claims, OutgoingLogin
from broker.ops.activity import note_user, record_login
from broker.ops.audit import audit
from broker.ops.cert_expiry import note_expired_certificate
from broker.ops.observability import request_id
from broker.picker import HeldLogin, hold_for_choice
from broker.provisioning.preview import preview_provisioning
from broker.provisioning.sync import ProvisioningError, sync_user
from broker.rules import routing, trust
from broker.rules.portal_groups import portal_groups
from broker.rules.routing import target_allowed
from broker.runtime import Runtime
from broker.saml.assertion import issue_response
from broker.saml.response import Expectations, validate_response
from broker.store import keys

log = logging.getLogger("broker.login")

FIRST_UPSTREAM_TTL_SECONDS = trust.FIRST_UPSTREAM_TTL_SECONDS  # renewed on every login


def validate(run: LoginRun) -> LoginRun:
    """Everything the upstream's response must say: signature, issuer, audience, time, InResponseTo."""
    rt, pending = run.rt, run.pending
    broker = rt.config.broker
    expectations = Expectations(
        upstream_name=pending.upstream,
        upstream=rt.upstreams[pending.upstream].idp,
        sp_entity_id=broker.sp_entity,
        acs_url=broker.acs_url,
        request_id=pending.request_id,
        now=rt.clock(),
        skew=rt.skew,
        max_bytes=broker.max_response_bytes,
        allow_sha1=rt.upstreams[pending.upstream].settings.allow_sha1,
        enforce_certificate_expiry=rt.upstreams[pending.upstream].settings.enforce_certificate_expiry,
    )
    validated = validate_response(run.saml_response, expectations, run.trace)
    if validated.expired_certificate is not None:
        note_expired_certificate(rt, pending.upstream, validated.expired_certificate)
    return replace(run, validated=validated, identity=validated.identity)


def consume(run: LoginRun) -> LoginRun:
    """Record the assertion ID (replay cache, shared by replicas) and take the pending request, in one atomic
    store operation: once only. An IdP-initiated response issued before the store epoch (the store lost its
    data since) is refused, as its replay-cache entry may have been lost with it."""
    rt, validated = run.rt, _required(run.validated, "validate")
    identity = validated.identity
    ttl = max(1, int((validated.replay_until - rt.clock()).total_seconds()) + 1)
    issued = validated.issued_at or rt.clock()
    solicited = run.pending.request_id is not None and run.relay_state is not None
    result = rt.store.consume(
        keys.used_assertion(identity.issuer, identity.assertion_id),
        ttl,
        pending_key=keys.pending_login(run.relay_state or "") if solicited else None,
        issued_at=issued.timestamp(),
        wipe_margin=rt.skew.total_seconds(),
    )
    if result == "replay":
        rt.metrics.replay_rejections.inc()
        raise SamlRejected("replay", "this assertion was already used", got=identity.assertion_id)
    if result == "before_epoch":
        rt.metrics.replay_rejections.inc()
        raise SamlRejected(
            "replay", "IdP-initiated response issued before the store epoch (the state store lost its data, "
            "or an in-memory store was restarted): its replay-cache entry may be gone",
            got=identity.assertion_id,
        )  # fmt: skip
    if result == "pending_gone":
        raise SamlRejected("in_response_to", "the pending request was consumed by another response")
    return run


def map_claims(run: LoginRun) -> LoginRun:
    """The upstream's attributes → the canonical claims, by the upstream's preset (Entra, Okta, ...)."""
    identity = _required(run.identity, "validate")
    upstream = run.rt.upstreams[identity.upstream]
    claims = presets.map_claims(identity, upstream.claim_names)
    note_user(claims.email)  # a refusal later in this request names the user on the activity page
    run.trace("claims", f"mapped with the {upstream.settings.preset} preset: {claims.email}")
    return replace(run, claims=claims)


def resolve_groups(run: LoginRun) -> LoginRun:
    """Entra group GUIDs → names (static map, cache, Graph); names from other IdPs pass through."""
    rt, identity, claims = run.rt, _required(run.identity, "validate"), _required(run.claims, "map_claims")
    upstream = rt.upstreams[identity.upstream]
    directory = upstream.directory
    if run.mode is Mode.OFFLINE and directory is not None:
        directory = UnreachableDirectory("offline: Microsoft Graph not asked")
    result = resolve_group_values(
        claims.groups,
        object_id=claims.object_id,
        overage_signalled=presets.groups_overage_signalled(identity, upstream.claim_names),
        settings=upstream.settings.groups,
        store=rt.store,
        graph_client=directory,
    )
    if run.mode is Mode.LIVE:
        for source, count in Counter(record.source for record in result.records).items():
            rt.metrics.group_names.labels(source).inc(count)
    for record in result.records:
        run.trace("groups", f"{record.value} → {record.name or '(unresolved)'} [{record.source}]")
    if not result.complete:
        run.trace("groups", f"incomplete ({result.graph_error}): last complete set sent, nothing removed")
    # Object ids count only from Entra (signed by the tenant, or Graph's answer for this user's object id):
    # object-id rules (broker.rules.trust.groups_match) never match a value another upstream sent
    entra = rt.config.upstreams[identity.upstream].preset == "entra"
    ids = tuple(r.value.lower() for r in result.records if trust.is_object_id(r.value)) if entra else ()
    return replace(
        run, claims=replace(claims, groups=result.names, groups_complete=result.complete, group_ids=ids)
    )


def check_trust(run: LoginRun) -> LoginRun:
    """The upstream may only sign in addresses of its own e-mail domains (`upstreams.<n>.email_domains`).
    Before routing, so what it refuses never reaches a portal, the picker or the admin sign-in."""
    rt, identity, claims = run.rt, _required(run.identity, "validate"), _required(run.claims, "map_claims")
    upstream = identity.upstream
    try:
        trust.check_email_domain(upstream, rt.config.upstreams[upstream], claims.email)
    except trust.EmailDomainRefused:
        if run.mode is Mode.LIVE:
            audit("trust.refused", check="email_domain", upstream=upstream, email=claims.email,
                  reference=request_id.get())  # fmt: skip
        raise
    run.trace("trust", f"{upstream} may assert {trust.email_domain(claims.email)} addresses")
    return run


def route(run: LoginRun) -> LoginRun:
    """The portal(s) this user may enter: several in a live login hold it for the portal picker."""
    identity, claims = _required(run.identity, "validate"), _required(run.claims, "map_claims")
    decision = routing.route(run.rt.config, run.pending.portal, identity.upstream, claims)
    run.trace("routing", f"{', '.join(decision.portals)}: {decision.reason}")
    if len(decision.portals) > 1 and run.mode is Mode.LIVE:
        choice = hold_for_choice(run.rt, decision.portals, HeldLogin(identity, claims, run.pending.target))
        return replace(run, decision=decision, choice=choice)
    return replace(run, decision=decision, portal=decision.portals[0])


def link_account(run: LoginRun) -> LoginRun:
    """The first upstream that brings an address to a portal keeps it; another one is refused unless the
    portal says `account_linking: allow`. Recorded in live logins (kept 400 days past the last one); trace
    and offline runs only look."""
    rt, portal, claims = run.rt, _required(run.portal, "route"), _required(run.claims, "map_claims")
    upstream, live = run.upstream, run.mode is Mode.LIVE
    key = keys.first_upstream(portal, claims.email)
    # live: one round trip records a first upstream, renews a returning user's record, or reads another's
    raw = rt.store.claim(key, upstream.encode(), FIRST_UPSTREAM_TTL_SECONDS) if live else rt.store.get(key)
    if live and raw is None:
        return run
    first = raw.decode() if raw is not None else None
    try:
        trust.check_account_link(portal, rt.config.portals[portal], first, upstream)
    except trust.AccountLinkRefused:
        if live:
            audit("trust.refused", check="account_linking", upstream=upstream, first_upstream=first,
                  portal=portal, email=claims.email, reference=request_id.get())  # fmt: skip
        raise
    run.trace("trust", f"{portal}: {first or 'no upstream yet'} brought {claims.email} here first")
    return run


def provision(run: LoginRun) -> LoginRun:
    """Create or update the user and their groups in LearnUpon before the assertion lands (when enabled).
    Under the portal's `block` policy a failure stops the login; under `continue` LearnUpon's JIT takes over.
    Trace and offline runs only plan: against LearnUpon as it is (GET only), or offline an empty portal."""
    rt, portal, claims = run.rt, _required(run.portal, "route"), _required(run.claims, "map_claims")
    settings, client = rt.portals[portal].settings.provisioning, rt.portals[portal].learnupon
    groups = portal_groups(
        claims.groups, rt.portals[portal].settings.groups
    )  # the assertion's groups, exactly
    if not claims.groups_complete:
        # groups may be missing only because they could not be resolved: remove no membership this time
        settings = settings.model_copy(update={"managed_groups": [], "managed_group_patterns": []})
    if run.mode is not Mode.LIVE:
        if not settings.enabled:
            return run
        offline = run.mode is Mode.OFFLINE
        preview = preview_provisioning(
            portal, claims, settings, client, rt.store, offline=offline, groups=groups
        )
        return replace(run, provisioning_preview=preview)
    if client is None:
        return run
    try:
        outcome = sync_user(portal, claims, settings, client, rt.store, groups=groups)
    except ProvisioningError as exc:
        leave_job(rt, portal, claims, f"login refused: {exc.reason}")  # the account still converges
        raise
    if outcome.status == "failed":
        leave_job(rt, portal, claims, f"not finished in the login: {outcome.error}")
    rt.metrics.provisioning.labels(portal, outcome.status).inc()
    run.trace(
        "provisioning", f"{outcome.status}: {len(outcome.calls)} change(s), {outcome.requests} API request(s)"
    )
    return replace(run, provisioning=outcome)


def leave_job(rt: Runtime, portal: str, claims: Claims, why: str) -> None:
    """Hand what provisioning could not finish to a background job; a queue that cannot take it is logged,
    never a reason to fail the login."""
    try:
        enqueue_converge(rt, portal, claims, why)
    except Exception:  # noqa: BLE001 - the login goes on under its policy whatever the queue says
        log.exception("could not queue the provisioning job for portal %s", portal)


def issue(run: LoginRun) -> LoginRun:
    """The portal's assertion, signed with the portal's key in a live login; an unsigned preview otherwise."""
    rt, portal = run.rt, _required(run.portal, "route")
    identity, claims = _required(run.identity, "validate"), _required(run.claims, "map_claims")
    settings, portal_trust = rt.portals[portal].settings, rt.portals[portal].trust
    target = run.pending.target
    if target is not None and not target_allowed(settings, target):
        log.info("deep link %r not allowed for portal %s: sending the landing path", target, portal)
        target = None
    attributes = outgoing_attributes(claims, settings)
    live = run.mode is Mode.LIVE
    issued = issue_response(
        portal_trust,
        claims.email,
        attributes,
        now=rt.clock(),
        authn_instant=identity.authn_instant,
        session_index=identity.session_index,
        sign=live,
    )
    groups_sent = attributes.get(settings.attributes.groups or "", ())
    outgoing = OutgoingLogin(portal, portal_trust.acs_url, issued.saml_response, target or settings.landing_path,
                             issued.assertion_id, groups_sent)  # fmt: skip
    if live:
        rt.metrics.logins_completed.labels(portal, identity.upstream).inc()
        provisioned = run.provisioning.status if run.provisioning else "off"
        audit("login", upstream=identity.upstream, portal=portal, email=claims.email, groups=list(groups_sent),
              provisioning=provisioned, assertion_id=issued.assertion_id, reference=request_id.get())  # fmt: skip
        record_login(rt, portal, identity.upstream, claims.email, run.provisioning)
    return replace(run, issued=issued, outgoing=outgoing)
