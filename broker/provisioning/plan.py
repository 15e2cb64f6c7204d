"""What pre-provisioning should do, without doing it: a portal's `ProvisioningSettings`, `desired_state`
(claims + the portal's groups + settings → what LearnUpon should hold) and `plan` (the difference from what it
holds, as `ApiCall`s).

The groups come from `broker.rules.portal_groups`, the function that also fills the assertion: LearnUpon's
"Sync group with SAML SSO" removes a user from every synced group the assertion does not name, so preparing any
other list would be undone (or fought) at the next login.
"""

from __future__ import annotations

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
from broker.provisioning.enrollments import (
    UNENROLLABLE_STATUSES,
    CurrentEnrollment,
    Kind,
    Target,
    resolve,
    unenroll_targets,
    wanted_targets,
)
from broker.rules.names import matches_any

# ---- plain data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredState:
    """What LearnUpon should hold for one user. `user_type` None: leave it alone on existing users.
    `groups` are the portal's groups (the assertion's); `enrollments` what they enrol the user on;
    `unenrollments` courses of `unenroll: true` rules the user no longer matches."""

    email: str
    first_name: str
    last_name: str
    user_type: str | None
    membership_type: str | None
    groups: tuple[str, ...]
    enrollments: tuple[Target, ...] = ()
    unenrollments: tuple[Target, ...] = ()
    managed_groups: tuple[str, ...] = ()
    managed_group_patterns: tuple[str, ...] = ()

    def is_managed(self, title: str) -> bool:
        return matches_any([title], (*self.managed_groups, *self.managed_group_patterns))

    def planned_enrollments(self) -> list[str]:
        """For simulate and the admin trace: `course 12`, `learning path 'New Starters'`, …"""
        return [t.describe() for t in self.enrollments] + [
            f"{t.describe()} (unenrol if enrolled)" for t in self.unenrollments
        ]

    def fingerprint(self) -> str:
        """A hash of everything here: equal hashes mean nothing to do."""
        data = asdict(self)
        data["groups"] = sorted(g.lower() for g in self.groups)  # the order of groups changes nothing
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CurrentGroup:
    id: int
    title: str


@dataclass(frozen=True)
class CurrentState:
    """What LearnUpon holds: the user (None if absent), their groups, the ids of other groups we need
    (lower-cased title → id; absent ones must be created), their course enrolments and learning paths, and the
    ids of courses and learning paths the rules name by title (`Target.key()` → id)."""

    user: Mapping[str, Any] | None
    groups: tuple[CurrentGroup, ...] = ()
    known_groups: Mapping[str, int] = field(default_factory=dict)
    enrollments: tuple[CurrentEnrollment, ...] = ()
    learning_path_ids: frozenset[int] = frozenset()
    catalog: Mapping[tuple[Kind, str], int] = field(default_factory=dict)


ApiOp = Literal[
    "create_user",
    "update_user",
    "create_group",
    "add_membership",
    "remove_membership",
    "enroll",
    "enroll_learning_path",
    "unenroll",
]


@dataclass(frozen=True)
class ApiCall:
    """One change to make. Ids unknown at plan time (a user or group still to create) are resolved when
    applied, by group title."""

    op: ApiOp
    fields: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    group_id: int | None = None
    target: Target | None = None  # enroll, enroll_learning_path, unenroll
    target_id: int | None = None  # the course or learning path id (None: looked up by title when applied)
    enrollment_id: int | None = None  # unenroll

    def describe(self) -> str:
        """One line for the admin trace page, e.g. `POST group_memberships group="Sales"`."""
        shown = " ".join(f"{k}={v!r}" for k, v in self.fields.items())
        group = f"group={self.group!r}" + (f" (id {self.group_id})" if self.group_id is not None else "")
        target = ""
        if self.target is not None:
            found = f"id {self.target_id}" if self.target_id is not None else "id looked up by title"
            target = (
                self.target.describe()
                if isinstance(self.target.ref, int)
                else f"{self.target.describe()} ({found})"
            )
        return {
            "create_user": f"POST users {shown}",
            "update_user": f"PUT users/{{id}} {shown}",
            "create_group": f"POST groups title={self.group!r} sso_sync=True",
            "add_membership": f"POST group_memberships {group}",
            "remove_membership": f"DELETE group_memberships/{{membership id}} {group}",
            "enroll": f"POST enrollments {target}",
            "enroll_learning_path": f"POST learning_path_enrollments {target}",
            "unenroll": f"DELETE enrollments/{self.enrollment_id} {target}",
        }[self.op]


# ---- the steps ----------------------------------------------------------------------------------------------


def _unique(names: Any) -> tuple[str, ...]:
    """Names without blanks or case-insensitive duplicates, in their order (the assertion's)."""
    seen: dict[str, str] = {}
    for name in names:
        name = str(name).strip()
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    return tuple(seen.values())


def desired_state(claims: Claims, settings: ProvisioningSettings, groups: tuple[str, ...]) -> DesiredState:
    """Claims + the portal's groups for this user (`portal_groups`, as in the assertion) + settings → what
    LearnUpon should hold. Pure."""
    groups = _unique(groups)
    user_type: str | None = None
    if settings.user_type_rules:
        user_type = next(
            (r.user_type for r in settings.user_type_rules if matches_any(groups, [r.group])), "learner"
        )
    return DesiredState(
        email=claims.email.strip(),
        first_name=claims.first_name.strip(),
        last_name=claims.last_name.strip(),
        user_type=user_type,
        membership_type=settings.membership_type,
        groups=groups,
        enrollments=wanted_targets(settings.enrollments, groups),
        unenrollments=unenroll_targets(settings.enrollments, groups),
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
    return calls + _plan_enrollments(desired, current)


def _plan_enrollments(desired: DesiredState, current: CurrentState) -> list[ApiCall]:
    """Enrol on what is missing (nothing when already enrolled); unenrol only as `unenroll: true` rules say."""
    calls: list[ApiCall] = []
    enrolled = {e.course_id for e in current.enrollments}
    wanted_courses: set[int] = set()
    for target in desired.enrollments:
        target_id = resolve(target, current.catalog)
        if target.kind == "course":
            if target_id is not None:
                wanted_courses.add(target_id)
            if target_id is None or target_id not in enrolled:
                calls.append(ApiCall("enroll", target=target, target_id=target_id))
        elif target_id is None or target_id not in current.learning_path_ids:
            calls.append(ApiCall("enroll_learning_path", target=target, target_id=target_id))
    for target in desired.unenrollments:
        target_id = resolve(target, current.catalog)
        for enrollment in current.enrollments:
            if (
                enrollment.course_id == target_id
                and target_id not in wanted_courses
                and enrollment.status in UNENROLLABLE_STATUSES
            ):
                calls.append(
                    ApiCall("unenroll", target=target, target_id=target_id, enrollment_id=enrollment.id)
                )
    return calls
