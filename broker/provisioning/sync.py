"""Pre-provisioning: make the LearnUpon user, groups and enrollments match the login's claims, before the
assertion lands.

The steps: `desired_state` and `plan` (pure, in `plan.py`), `read_current` (GET calls only) and `apply`.
`sync_user` adds what a login needs around them: skip when nothing changed since the last sync (a hash in the
store), one sync per user at a time (a lock in the store), a time budget, and the failure policy. `dry_run`
shows the plan.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from broker.clients.learnupon import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
)
from broker.errors import LoginRefused, StoreUnavailable
from broker.model import Claims
from broker.provisioning.plan import (
    ApiCall,
    CurrentGroup,
    CurrentState,
    DesiredState,
    ProvisioningSettings,
    desired_state,
    plan,
)
from broker.store import Store, keys

log = logging.getLogger(__name__)

GROUP_DESCRIPTION = "Created by the SAML broker; members are synced from the identity provider."
_LOCK_POLL_SECONDS = 0.05


def build_client(
    portal: str, settings: ProvisioningSettings, environ: Mapping[str, str] | None = None, **kwargs: Any
) -> LearnUponClient:
    """A client for one portal; timeouts never exceed the login budget."""
    username, password = settings.credentials(environ)
    budget = settings.budget_seconds
    kwargs.setdefault("timeout", (min(3.05, budget), min(10.0, budget)))
    return LearnUponClient(settings.api_base_url(portal), username, password, **kwargs)


# ---- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync did. `status`: disabled, unchanged (hash matched, no API call), synced, failed."""

    portal: str
    email: str
    status: Literal["disabled", "unchanged", "synced", "failed"]
    calls: tuple[ApiCall, ...] = ()
    requests: int = 0
    user_id: int | None = None
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class SyncPlan:
    """A dry run: the calls a sync would make now. `cached`: the store says this state was already synced
    (a real sync would make no call at all)."""

    portal: str
    desired: DesiredState
    current: CurrentState
    calls: tuple[ApiCall, ...]
    fingerprint: str
    cached: bool
    requests: int


class ProvisioningError(LoginRefused):
    """Pre-provisioning failed and the portal's policy is `on_failure: block`."""

    check = "provisioning"

    status_code = 503
    public_message = "Your LearnUpon account could not be prepared. Please try again in a few minutes."

    def __init__(self, reason: str, *, outcome: SyncOutcome | None = None):
        super().__init__(reason)
        self.outcome = outcome


# ---- the steps that talk to LearnUpon ----------------------------------------------------------------------


def _find_group_id(client: LearnUponClient, title: str) -> int | None:
    for group in client.list_groups(title=title):
        if str(group.get("title", "")).lower() == title.lower() and group.get("id") is not None:
            return int(group["id"])
    return None


def read_current(desired: DesiredState, client: LearnUponClient) -> CurrentState:
    """What LearnUpon holds for this user, with GET calls only."""
    user = client.find_user_by_email(desired.email)
    groups: tuple[CurrentGroup, ...] = ()
    course_ids: frozenset[int] = frozenset()
    if user is not None:
        groups = tuple(
            CurrentGroup(int(g["id"]), str(g.get("title", "")))
            for g in client.list_memberships(int(user["id"]))
            if g.get("id") is not None
        )
        if desired.course_ids:
            course_ids = frozenset(
                int(e["course_id"])
                for e in client.list_enrollments(int(user["id"]))
                if e.get("course_id") is not None
            )
    have = {g.title.lower() for g in groups}
    known: dict[str, int] = {}
    for title in desired.groups:
        if title.lower() not in have:
            group_id = _find_group_id(client, title)
            if group_id is not None:
                known[title.lower()] = group_id
    return CurrentState(user=user, groups=groups, known_groups=known, course_ids=course_ids)


class _UserAppeared(Exception):
    """Create said the user exists although the search did not find it: read again and re-plan."""


def apply(
    calls: list[ApiCall], desired: DesiredState, current: CurrentState, client: LearnUponClient
) -> int | None:
    """Make the calls in order; returns the user id. "Already exists" answers count as done."""
    user_id = int(current.user["id"]) if current.user is not None else None
    group_ids = {**current.known_groups, **{g.title.lower(): g.id for g in current.groups}}
    for call in calls:
        if call.op == "create_user":
            try:
                user_id = client.create_user(dict(call.fields))
            except LearnUponError as exc:
                if isinstance(exc, LearnUponAuthError) or exc.status is None or exc.status >= 500:
                    raise
                # Another login (or the search index) was ahead of us: if the user now exists, start over.
                if client.find_user_by_email(desired.email) is not None:
                    raise _UserAppeared from None
                raise
        elif call.op == "update_user":
            client.update_user(_need(user_id), dict(call.fields))
        elif call.op == "create_group":
            title = _need(call.group)
            try:
                group_ids[title.lower()] = client.create_group(title, GROUP_DESCRIPTION, sso_sync=True)
            except LearnUponError as exc:
                if isinstance(exc, LearnUponAuthError) or exc.status is None or exc.status >= 500:
                    raise
                found = _find_group_id(client, title)  # created meanwhile by another login
                if found is None:
                    raise
                group_ids[title.lower()] = found
        elif call.op == "add_membership":
            group_id = call.group_id if call.group_id is not None else group_ids[_need(call.group).lower()]
            try:
                client.add_membership(group_id, _need(user_id))
            except LearnUponConflict:
                pass
        elif call.op == "remove_membership":
            try:
                client.remove_user_from_group(_need(call.group_id), _need(user_id))
            except LearnUponNotFound:
                pass
        elif call.op == "enroll":
            try:
                client.enroll(desired.email, _need(call.course_id))
            except LearnUponConflict:
                pass
    return user_id


def _need(value: Any) -> Any:
    if value is None:
        raise LearnUponError("provisioning plan refers to a user or group that was not created")
    return value


def _converge(desired: DesiredState, client: LearnUponClient) -> tuple[tuple[ApiCall, ...], int | None]:
    for _ in range(2):
        current = read_current(desired, client)
        calls = plan(desired, current)
        try:
            return tuple(calls), apply(calls, desired, current, client)
        except _UserAppeared:
            continue
    raise LearnUponError("LearnUpon says the user exists, but searching for it finds nothing")


# ---- around the steps: cache, lock, budget, policy -----------------------------------------------------------


def _keys(portal: str, email: str) -> tuple[str, str]:
    return keys.provisioning_state(portal, email), keys.provisioning_lock(portal, email)


class _LockTimeout(Exception):
    pass


def _acquire(store: Store, key: str, deadline: float, ttl: int, clock: Callable[[], float]) -> bytes:
    token = secrets.token_hex(8).encode()
    while not store.add(key, token, ttl):
        if clock() + _LOCK_POLL_SECONDS >= deadline:
            raise _LockTimeout("another login of this user is still being provisioned")
        time.sleep(_LOCK_POLL_SECONDS)
    return token


def _release(store: Store, key: str, token: bytes) -> None:
    # Delete only our own lock: if it expired and another login took it, leave theirs alone.
    if store.get(key) == token:
        store.delete(key)


def sync_user(
    portal: str,
    claims: Claims,
    settings: ProvisioningSettings,
    client: LearnUponClient,
    store: Store,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> SyncOutcome:
    """Bring LearnUpon in line with the claims, within `settings.budget_seconds`.

    Makes no API call when the store holds the same desired-state hash for (portal, email). Raises
    `ProvisioningError` on failure only when `on_failure` is `block`; otherwise the outcome says `failed`.
    """
    started = clock()
    email = claims.email.strip()
    if not settings.enabled:
        return SyncOutcome(portal, email, "disabled")
    desired = desired_state(claims, settings)
    digest = desired.fingerprint().encode()
    state_key, lock_key = _keys(portal, email)

    def outcome(status: str, **kw: Any) -> SyncOutcome:
        return SyncOutcome(portal, email, status, duration_ms=(clock() - started) * 1000, **kw)  # type: ignore[arg-type]

    if store.get(state_key) == digest:
        return outcome("unchanged")
    deadline = started + settings.budget_seconds
    # The lock outlives the budget, so it expires only when its holder crashed.
    lock_ttl = int(settings.budget_seconds) + 5
    with client.budget(settings.budget_seconds) as scope:
        try:
            token = _acquire(store, lock_key, deadline, lock_ttl, clock)
            try:
                if store.get(state_key) == digest:  # the login we waited for did the work
                    return outcome("unchanged")
                calls, user_id = _converge(desired, client)
                if settings.state_ttl_seconds > 0:
                    store.put(state_key, digest, settings.state_ttl_seconds)
            finally:
                _release(store, lock_key, token)
        except StoreUnavailable:
            raise  # the login cannot go on without the store anyway; the app answers 503
        except Exception as exc:
            # Any failure here, even a bug, follows the portal's policy: under `continue` the login goes on.
            expected = isinstance(exc, LearnUponError | _LockTimeout)
            failed = outcome("failed", requests=scope.requests, error=str(exc) or type(exc).__name__)
            log.log(
                logging.WARNING if expected else logging.ERROR,
                "provisioning failed portal=%s email=%s policy=%s requests=%d error=%s",
                portal,
                email,
                settings.on_failure,
                scope.requests,
                failed.error,
                exc_info=not expected,
            )
            if settings.on_failure == "block":
                raise ProvisioningError(
                    f"provisioning for portal {portal} failed: {failed.error}", outcome=failed
                ) from exc
            return failed
    done = outcome("synced", calls=calls, requests=scope.requests, user_id=user_id)
    log.info(
        "provisioning synced portal=%s email=%s calls=%d requests=%d ms=%.0f",
        portal,
        email,
        len(calls),
        done.requests,
        done.duration_ms,
    )
    return done


def dry_run(
    portal: str,
    claims: Claims,
    settings: ProvisioningSettings,
    client: LearnUponClient,
    store: Store | None = None,
) -> SyncPlan:
    """The calls a sync would make now, reading LearnUpon (GET only) but changing nothing."""
    desired = desired_state(claims, settings)
    digest = desired.fingerprint()
    cached = store is not None and store.get(_keys(portal, claims.email)[0]) == digest.encode()
    with client.budget(settings.budget_seconds) as scope:
        current = read_current(desired, client)
    return SyncPlan(portal, desired, current, tuple(plan(desired, current)), digest, cached, scope.requests)
