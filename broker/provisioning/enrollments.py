"""Enrolment rules: members of a portal's groups are enrolled on courses and learning paths.

A rule names groups (names or patterns, matched like everything else by `broker.rules.names`) against the
portal's groups — the same list the assertion carries — and the courses and learning paths to enrol on, each by
id or by exact title (looked up once per process, see `LearnUponClient.find_course_id`). Enrolment is additive:
the broker never unenrols, unless a rule says `unenroll: true`, and then only from that rule's courses that the
user has not started finishing (status not_started or in_progress) and that no other rule still gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from broker.config.provisioning import CourseRef, EnrollmentRule
from broker.rules.names import matches_any

Kind = Literal["course", "learning_path"]
UNENROLLABLE_STATUSES = frozenset({"not_started", "in_progress"})


@dataclass(frozen=True)
class Target:
    """A course or learning path to be enrolled on, by id or by title (resolved when LearnUpon is read)."""

    kind: Kind
    ref: CourseRef

    def key(self) -> tuple[Kind, str]:
        """A title is matched case-insensitively; the key of an id is its digits."""
        return self.kind, str(self.ref).strip().lower()

    def describe(self) -> str:
        what = "course" if self.kind == "course" else "learning path"
        return f"{what} {self.ref}" if isinstance(self.ref, int) else f"{what} {self.ref!r}"


def _unique(targets: Iterable[Target]) -> tuple[Target, ...]:
    seen: dict[tuple[Kind, str], Target] = {}
    for target in targets:
        seen.setdefault(target.key(), target)
    return tuple(seen[k] for k in sorted(seen))


def _targets(rule: EnrollmentRule) -> list[Target]:
    return [Target("course", c) for c in rule.courses] + [
        Target("learning_path", p) for p in rule.learning_paths
    ]


def wanted_targets(rules: Iterable[EnrollmentRule], groups: Iterable[str]) -> tuple[Target, ...]:
    """What the user's groups (the portal's names) enrol them on, sorted, without duplicates."""
    groups = list(groups)
    return _unique(t for rule in rules if matches_any(groups, rule.groups) for t in _targets(rule))


def unenroll_targets(rules: Iterable[EnrollmentRule], groups: Iterable[str]) -> tuple[Target, ...]:
    """Courses of `unenroll: true` rules the user no longer matches, minus what another rule still gives."""
    rules, groups = list(rules), list(groups)
    kept = {t.key() for t in wanted_targets(rules, groups)}
    return _unique(
        t
        for rule in rules
        if rule.unenroll and not matches_any(groups, rule.groups)
        for t in _targets(rule)
        if t.key() not in kept
    )


@dataclass(frozen=True)
class CurrentEnrollment:
    """One of the user's course enrolments as LearnUpon lists it."""

    id: int
    course_id: int
    status: str


def resolve(target: Target, ids: Mapping[tuple[Kind, str], int]) -> int | None:
    """The target's id: given in the rule, or found by title (None: not looked up, e.g. offline)."""
    if isinstance(target.ref, int):
        return target.ref
    return ids.get(target.key())
