"""Pre-provisioning: make the LearnUpon user, groups and enrollments match the login's claims, before the
assertion lands.

The groups are the portal's groups for the user (`broker.rules.portal_groups`), the ones the assertion carries.
The steps: `desired_state` and `plan` (pure, in `plan.py`), `read_current` (GET calls only) and `apply` (in
`steps.py`).
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

from broker.clients.learnupon import LearnUponClient, LearnUponError
from broker.errors import LoginRefused, StoreUnavailable
from broker.model import Claims
from broker.provisioning.plan import (
    ApiCall,
    CurrentState,
    DesiredState,
    ProvisioningSettings,
    desired_state,
    plan,
)
from broker.provisioning.steps import UserAppeared, apply, read_current
from broker.store import Store, keys

log = logging.getLogger(__name__)

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

    def __init__(self, reason: str, *, outcome: SyncOutcome | None = None):
        super().__init__(reason)
        self.outcome = outcome


def _converge(desired: DesiredState, client: LearnUponClient) -> tuple[tuple[ApiCall, ...], int | None]:
    for _ in range(2):
        current = read_current(desired, client)
        calls = plan(desired, current)
        try:
            return tuple(calls), apply(calls, desired, current, client)
        except UserAppeared:
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
    groups: tuple[str, ...],
    clock: Callable[[], float] = time.monotonic,
) -> SyncOutcome:
    """Bring LearnUpon in line with the claims and the portal's `groups` for the user (`portal_groups`, the
    assertion's list), within `settings.budget_seconds`.

    Makes no API call when the store holds the same desired-state hash for (portal, email). Raises
    `ProvisioningError` on failure only when `on_failure` is `block`; otherwise the outcome says `failed`.
    """
    started = clock()
    email = claims.email.strip()
    if not settings.enabled:
        return SyncOutcome(portal, email, "disabled")
    desired = desired_state(claims, settings, groups)
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
    *,
    groups: tuple[str, ...],
) -> SyncPlan:
    """The calls a sync would make now, reading LearnUpon (GET only) but changing nothing."""
    desired = desired_state(claims, settings, groups)
    digest = desired.fingerprint()
    cached = store is not None and store.get(_keys(portal, claims.email)[0]) == digest.encode()
    with client.budget(settings.budget_seconds) as scope:
        current = read_current(desired, client)
    return SyncPlan(portal, desired, current, tuple(plan(desired, current)), digest, cached, scope.requests)
