"""The steps of pre-provisioning that talk to LearnUpon: `read_current` (GET calls only) and `apply` (the
planned writes).

A refused write (4xx) is never interpreted from its wording: LearnUpon is read again to see whether the change
is there anyway (made by a concurrent login), and only then is the call counted as done.
"""

from __future__ import annotations

from typing import Any

from broker.clients.learnupon import LearnUponAuthError, LearnUponClient, LearnUponError
from broker.provisioning.enrollments import CurrentEnrollment, Target
from broker.provisioning.plan import ApiCall, CurrentGroup, CurrentState, DesiredState

GROUP_DESCRIPTION = "Created by the SAML broker; members are synced from the identity provider."


def _find_group_id(client: LearnUponClient, title: str) -> int | None:
    for group in client.list_groups(title=title):
        if str(group.get("title", "")).lower() == title.lower() and group.get("id") is not None:
            return int(group["id"])
    return None


def _groups_of(client: LearnUponClient, user_id: int) -> tuple[CurrentGroup, ...]:
    return tuple(
        CurrentGroup(int(g["id"]), str(g.get("title", "")))
        for g in client.list_memberships(user_id)
        if g.get("id") is not None
    )


def _enrollments_of(client: LearnUponClient, user_id: int) -> tuple[CurrentEnrollment, ...]:
    return tuple(
        CurrentEnrollment(int(e.get("id") or 0), int(e["course_id"]), str(e.get("status", "")))
        for e in client.list_enrollments(user_id)
        if e.get("course_id") is not None
    )


def _learning_paths_of(client: LearnUponClient, user_id: int) -> frozenset[int]:
    return frozenset(
        int(e["lp_id"]) for e in client.list_learning_path_enrollments(user_id) if e.get("lp_id") is not None
    )


def _look_up(client: LearnUponClient, target: Target) -> int:
    if isinstance(target.ref, int):
        return target.ref
    if target.kind == "course":
        return client.find_course_id(target.ref)
    return client.find_learning_path_id(target.ref)


def read_current(desired: DesiredState, client: LearnUponClient) -> CurrentState:
    """What LearnUpon holds for this user, with GET calls only. Enrolments are read only when a rule names a
    course or learning path for this user, and titles are looked up once per client."""
    user = client.find_user_by_email(desired.email)
    targets = (*desired.enrollments, *desired.unenrollments)
    catalog = {t.key(): _look_up(client, t) for t in targets if isinstance(t.ref, str)}
    groups: tuple[CurrentGroup, ...] = ()
    enrollments: tuple[CurrentEnrollment, ...] = ()
    learning_paths: frozenset[int] = frozenset()
    if user is not None:
        user_id = int(user["id"])
        groups = _groups_of(client, user_id)
        if any(t.kind == "course" for t in targets):
            enrollments = _enrollments_of(client, user_id)
        if any(t.kind == "learning_path" for t in desired.enrollments):
            learning_paths = _learning_paths_of(client, user_id)
    have = {g.title.lower() for g in groups}
    known: dict[str, int] = {}
    for title in desired.groups:
        if title.lower() not in have:
            group_id = _find_group_id(client, title)
            if group_id is not None:
                known[title.lower()] = group_id
    return CurrentState(
        user=user,
        groups=groups,
        known_groups=known,
        enrollments=enrollments,
        learning_path_ids=learning_paths,
        catalog=catalog,
    )


class UserAppeared(Exception):
    """Create said no although the search did not find the user, and now it does: read again and re-plan."""


def _refused(exc: LearnUponError) -> bool:
    """A 4xx answer other than auth: LearnUpon refused this change (perhaps because it is already made)."""
    return not isinstance(exc, LearnUponAuthError) and exc.status is not None and 400 <= exc.status < 500


def apply(
    calls: list[ApiCall], desired: DesiredState, current: CurrentState, client: LearnUponClient
) -> int | None:
    """Make the calls in order; returns the user id. A refused write counts as done only when reading
    LearnUpon again shows the change there (a concurrent login made it)."""
    user_id = int(current.user["id"]) if current.user is not None else None
    group_ids = {**current.known_groups, **{g.title.lower(): g.id for g in current.groups}}
    for call in calls:
        try:
            if call.op == "create_user":
                user_id = client.create_user(dict(call.fields))
            elif call.op == "update_user":
                client.update_user(_need(user_id), dict(call.fields))
            elif call.op == "create_group":
                group = _need(call.group)
                group_ids[group.lower()] = client.create_group(group, GROUP_DESCRIPTION, sso_sync=True)
            elif call.op == "add_membership":
                group_id = (
                    call.group_id if call.group_id is not None else group_ids[_need(call.group).lower()]
                )
                client.add_membership(group_id, _need(user_id))
            elif call.op == "remove_membership":
                membership_id = client.find_membership_id(_need(call.group_id), _need(user_id))
                if membership_id is not None:  # None: already gone
                    client.remove_membership(membership_id)
            elif call.op == "enroll":
                client.enroll(_need(user_id), _target_id(call, client))
            elif call.op == "enroll_learning_path":
                client.enroll_learning_path(_need(user_id), _target_id(call, client))
            elif call.op == "unenroll":
                client.unenroll(_need(call.enrollment_id))
        except LearnUponError as exc:
            if not _refused(exc):
                raise
            user_id = _confirm_done(call, exc, desired, client, user_id, group_ids)
    return user_id


def _target_id(call: ApiCall, client: LearnUponClient) -> int:
    return call.target_id if call.target_id is not None else _look_up(client, _need(call.target))


def _confirm_done(
    call: ApiCall,
    exc: LearnUponError,
    desired: DesiredState,
    client: LearnUponClient,
    user_id: int | None,
    group_ids: dict[str, int],
) -> int | None:
    """After a refused write: re-read; return (the user id) when the change is there, raise `exc` if not."""
    if call.op == "create_user":
        if client.find_user_by_email(desired.email) is not None:
            raise UserAppeared from None
        raise exc
    if call.op == "create_group":
        found = _find_group_id(client, _need(call.group))
        if found is None:
            raise exc
        group_ids[call.group.lower()] = found  # type: ignore[union-attr]
        return user_id
    if call.op == "add_membership" and user_id is not None:
        if any(g.title.lower() == _need(call.group).lower() for g in _groups_of(client, user_id)):
            return user_id
    if call.op == "remove_membership" and user_id is not None:
        if client.find_membership_id(_need(call.group_id), user_id) is None:
            return user_id
    if call.op == "enroll" and user_id is not None:
        wanted = _target_id(call, client)
        if any(e.course_id == wanted for e in _enrollments_of(client, user_id)):
            return user_id
    if call.op == "enroll_learning_path" and user_id is not None:
        if _target_id(call, client) in _learning_paths_of(client, user_id):
            return user_id
    if call.op == "unenroll" and user_id is not None:
        if all(e.id != call.enrollment_id for e in _enrollments_of(client, user_id)):
            return user_id
    raise exc


def _need(value: Any) -> Any:
    if value is None:
        raise LearnUponError("provisioning plan refers to a user or group that was not created")
    return value
