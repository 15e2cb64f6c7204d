"""What pre-provisioning should do, without doing it: a portal's `ProvisioningSettings`, `desired_state`
(claims + settings → what LearnUpon should hold) and `plan` (the difference from what it holds, as `ApiCall`s).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from broker.config.provisioning import (
    EnrollmentRule as EnrollmentRule,  # re-exported: settings live in config
)
from broker.config.provisioning import ProvisioningSettings as ProvisioningSettings
from broker.config.provisioning import UserType as UserType
from broker.config.provisioning import UserTypeRule as UserTypeRule
from broker.model import Claims

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
