"""Pre-provisioning: make the LearnUpon user, groups and enrollments match the login's claims, before the
assertion lands.

The steps are small and mostly pure: `desired_state` (claims + settings → what LearnUpon should hold),
`read_current` (GET calls only), `plan` (the difference, as `ApiCall`s) and `apply`. `sync_user` adds what a
login needs around them: skip when nothing changed since the last sync (a hash in the store), one sync per
user at a time (a lock in the store), a time budget, and the failure policy. `dry_run` shows the plan.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.errors import ConfigError, LoginRefused, StoreUnavailable
from broker.model import Claims
from broker.provisioning.client import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
)
from broker.store import Store

log = logging.getLogger(__name__)

UserType = Literal["learner", "instructor", "manager", "admin"]
GROUP_DESCRIPTION = "Created by the SAML broker; members are synced from the identity provider."
_LOCK_POLL_SECONDS = 0.05


# ---- settings ----------------------------------------------------------------------------------------------


class UserTypeRule(BaseModel):
    """Members of `group` get `user_type` (the first matching rule wins)."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1)
    user_type: UserType


class EnrollmentRule(BaseModel):
    """Members of `group` are enrolled on `course_ids`."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1)
    course_ids: list[int] = Field(min_length=1)


class ProvisioningSettings(BaseModel):
    """One portal's pre-provisioning through the LearnUpon REST API.

    Group names match case-insensitively. `managed_group_patterns` are shell-style wildcards (`fnmatch`:
    `LU-*`, `Course ?`), matched case-insensitively; a membership is removed only when its group is named in
    `managed_groups` or matches a pattern. `user_type` is managed only when `user_type_rules` is not empty
    (new users are learners otherwise), so admins made in LearnUpon are not demoted by a login.
    """

    # Inputs stay out of error text: a base_url could carry a key. (An enclosing model needs the same flag.)
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = False
    base_url: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    membership_type: str = "Member"
    managed_groups: list[str] = Field(default_factory=list)
    managed_group_patterns: list[str] = Field(default_factory=list)
    user_type_rules: list[UserTypeRule] = Field(default_factory=list)
    enrollment_rules: list[EnrollmentRule] = Field(default_factory=list)
    on_failure: Literal["continue", "block"] = "continue"
    budget_seconds: float = Field(default=5.0, gt=0, le=120)
    state_ttl_seconds: int = Field(default=86400, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://PORTAL.learnupon.com/api/v1/")
        if parts.username or parts.password:
            raise ValueError(
                "must not contain credentials; name environment variables in username_env/password_env"
            )
        return value if value.endswith("/") else value + "/"

    @field_validator("managed_group_patterns")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("patterns must not be empty")
        return value

    @model_validator(mode="after")
    def _check_credentials_named(self) -> ProvisioningSettings:
        if self.enabled and not (self.username_env and self.password_env):
            raise ValueError("username_env and password_env are required when provisioning is enabled")
        return self

    def api_base_url(self, portal: str) -> str:
        """`base_url`, or `https://<portal>.learnupon.com/api/v1/`."""
        return self.base_url or f"https://{portal}.learnupon.com/api/v1/"

    def credentials(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """The API key pair from the environment variables named in the settings."""
        environ = os.environ if environ is None else environ
        missing = [
            name for name in (self.username_env, self.password_env) if not name or not environ.get(name)
        ]
        if missing:
            raise ConfigError(f"provisioning: environment variable(s) {', '.join(map(str, missing))} not set")
        return environ[self.username_env], environ[self.password_env]  # type: ignore[index]


def build_client(
    portal: str, settings: ProvisioningSettings, environ: Mapping[str, str] | None = None, **kwargs: Any
) -> LearnUponClient:
    """A client for one portal; timeouts never exceed the login budget."""
    username, password = settings.credentials(environ)
    budget = settings.budget_seconds
    kwargs.setdefault("timeout", (min(3.05, budget), min(10.0, budget)))
    return LearnUponClient(settings.api_base_url(portal), username, password, **kwargs)


# ---- plain data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredState:
    """What LearnUpon should hold for one user. `user_type` None: leave it alone on existing users."""

    email: str
    first_name: str
    last_name: str
    user_type: str | None
    membership_type: str | None
    groups: tuple[str, ...]
    course_ids: tuple[int, ...]
    managed_groups: tuple[str, ...] = ()
    managed_group_patterns: tuple[str, ...] = ()

    def is_managed(self, title: str) -> bool:
        lowered = title.lower()
        return lowered in self.managed_groups or any(
            fnmatch.fnmatchcase(lowered, pattern) for pattern in self.managed_group_patterns
        )

    def fingerprint(self) -> str:
        """A hash of everything here: equal hashes mean nothing to do."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CurrentGroup:
    id: int
    title: str


@dataclass(frozen=True)
class CurrentState:
    """What LearnUpon holds: the user (None if absent), their groups, the ids of other groups we need
    (lower-cased title → id; absent ones must be created) and the courses they are enrolled on."""

    user: Mapping[str, Any] | None
    groups: tuple[CurrentGroup, ...] = ()
    known_groups: Mapping[str, int] = field(default_factory=dict)
    course_ids: frozenset[int] = frozenset()


ApiOp = Literal["create_user", "update_user", "create_group", "add_membership", "remove_membership", "enroll"]


@dataclass(frozen=True)
class ApiCall:
    """One change to make. Ids unknown at plan time (a user or group still to create) are resolved when
    applied, by group title."""

    op: ApiOp
    fields: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    group_id: int | None = None
    course_id: int | None = None

    def describe(self) -> str:
        """One line for the admin trace page, e.g. `POST group_memberships group="Sales"`."""
        shown = " ".join(f"{k}={v!r}" for k, v in self.fields.items())
        group = f"group={self.group!r}" + (f" (id {self.group_id})" if self.group_id is not None else "")
        return {
            "create_user": f"POST users {shown}",
            "update_user": f"PUT users/{{id}} {shown}",
            "create_group": f"POST groups title={self.group!r} sso_sync=True",
            "add_membership": f"POST group_memberships {group}",
            "remove_membership": f"DELETE group_memberships/0 {group}",
            "enroll": f"POST enrollments course_id={self.course_id}",
        }[self.op]


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


# ---- the steps ----------------------------------------------------------------------------------------------


def _unique(names: Any) -> tuple[str, ...]:
    """Names without blanks or case-insensitive duplicates, sorted, so the hash does not depend on order."""
    seen: dict[str, str] = {}
    for name in names:
        name = str(name).strip()
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    return tuple(seen[k] for k in sorted(seen))


def desired_state(claims: Claims, settings: ProvisioningSettings) -> DesiredState:
    """Claims + settings → what LearnUpon should hold. Pure."""
    groups = _unique(claims.groups)
    member_of = {g.lower() for g in groups}
    user_type: str | None = None
    if settings.user_type_rules:
        user_type = next(
            (r.user_type for r in settings.user_type_rules if r.group.lower() in member_of), "learner"
        )
    course_ids = sorted(
        {
            cid
            for rule in settings.enrollment_rules
            if rule.group.lower() in member_of
            for cid in rule.course_ids
        }
    )
    return DesiredState(
        email=claims.email.strip(),
        first_name=claims.first_name.strip(),
        last_name=claims.last_name.strip(),
        user_type=user_type,
        membership_type=settings.membership_type or None,
        groups=groups,
        course_ids=tuple(course_ids),
        managed_groups=tuple(sorted({g.strip().lower() for g in settings.managed_groups if g.strip()})),
        managed_group_patterns=tuple(sorted({p.lower() for p in settings.managed_group_patterns})),
    )


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


def _user_fields(desired: DesiredState) -> dict[str, Any]:
    fields = {
        "first_name": desired.first_name,
        "last_name": desired.last_name,
        "user_type": desired.user_type,
        "membership_type": desired.membership_type,
    }
    # An empty claim never blanks what LearnUpon has.
    return {k: v for k, v in fields.items() if v}


def plan(desired: DesiredState, current: CurrentState) -> list[ApiCall]:
    """The calls that turn `current` into `desired`. Pure."""
    calls: list[ApiCall] = []
    if current.user is None:
        fields = {"email": desired.email, "user_type": "learner", **_user_fields(desired)}
        calls.append(ApiCall("create_user", fields=fields))
    else:
        # Only fields the record shows can be compared; a field it does not show is left alone.
        changed = {
            k: v for k, v in _user_fields(desired).items() if k in current.user and current.user.get(k) != v
        }
        if changed:
            calls.append(ApiCall("update_user", fields=changed))
    have = {g.title.lower() for g in current.groups}
    for title in desired.groups:
        if title.lower() in have:
            continue
        group_id = current.known_groups.get(title.lower())
        if group_id is None:
            calls.append(ApiCall("create_group", group=title))
        calls.append(ApiCall("add_membership", group=title, group_id=group_id))
    wanted = {t.lower() for t in desired.groups}
    for group in current.groups:
        if group.title.lower() not in wanted and desired.is_managed(group.title):
            calls.append(ApiCall("remove_membership", group=group.title, group_id=group.id))
    for course_id in desired.course_ids:
        if course_id not in current.course_ids:
            calls.append(ApiCall("enroll", course_id=course_id))
    return calls


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
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"lu:state:{portal}:{digest}", f"lu:lock:{portal}:{digest}"


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
