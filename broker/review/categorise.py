"""Sort a portal's LearnUpon accounts into categories, each with its reason — pure: no I/O, no clock.

The rules, in order:
1. a LearnUpon **admin** is listed apart and never changed;
2. an account an answering directory shows active (and, when the portal has `required_groups`, in one of them)
   is **entitled** — unless it never signed in to LearnUpon (**never_signed_in**) or not for a long time
   (**inactive**);
3. otherwise, if a directory could not be read, the account is **unknown**: a partial picture never acts;
4. otherwise it is an **orphan**: not in any directory, disabled, suspended, deprovisioned, archived or deleted,
   or no longer in a group that routes to the portal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from broker.clients.directory import DirectorySnapshot, DirectoryUser
from broker.config.review import ReviewSettings
from broker.review.model import Account, Action, Finding


@dataclass(frozen=True)
class PortalPolicy:
    """What decides the categories of one portal's accounts."""

    required_groups: tuple[str, ...]  # names or patterns; empty: directory membership alone entitles
    settings: ReviewSettings


# A directory as the review sees it: its snapshot, or the reason it could not be read.
DirectoryView = DirectorySnapshot | str


def categorise(
    accounts: list[Account],
    directories: Mapping[str, DirectoryView],
    policy: PortalPolicy,
    now: datetime,
) -> list[Finding]:
    """A finding for each account, in the order given. `directories` maps an upstream name to its view."""
    indexes = {
        name: view.by_email() for name, view in directories.items() if isinstance(view, DirectorySnapshot)
    }
    return [_finding(account, directories, indexes, policy, now) for account in accounts]


def _finding(
    account: Account,
    directories: Mapping[str, DirectoryView],
    indexes: Mapping[str, dict[str, DirectoryUser]],
    policy: PortalPolicy,
    now: datetime,
) -> Finding:
    email = account.email.lower()
    statuses: dict[str, str] = {}
    entitled_in: list[str] = []
    unreachable: list[str] = []
    for name, view in directories.items():
        if isinstance(view, str):
            statuses[name] = f"unreachable: {view}"
            unreachable.append(name)
            continue
        status, entitled = _status(indexes[name].get(email), view, policy)
        statuses[name] = status
        if entitled:
            entitled_in.append(name)

    if account.user_type == "admin":
        summary = "; ".join(f"{n}: {s}" for n, s in statuses.items()) or "no directory configured"
        return Finding(account, "admin", f"LearnUpon admin, listed apart and never changed ({summary})",
                       None, statuses)  # fmt: skip
    if entitled_in:
        return _activity(account, statuses, entitled_in, policy.settings, now)
    if unreachable:
        why = "; ".join(f"{n}: {statuses[n]}" for n in unreachable)
        return Finding(
            account, "unknown", f"a directory could not be read, nothing decided ({why})", None, statuses
        )
    if not directories:
        return Finding(
            account, "unknown", "no directory is configured for this portal's upstreams", None, statuses
        )
    action = _orphan_action(account, policy.settings)
    reason = "; ".join(f"{n}: {s}" for n, s in statuses.items())
    if action is None:
        reason += " (already disabled in LearnUpon)"
    return Finding(account, "orphan", reason, action, statuses)


def _status(user: DirectoryUser | None, snap: DirectorySnapshot, policy: PortalPolicy) -> tuple[str, bool]:
    """(what this directory says of the account, whether it entitles the account to the portal)."""
    if user is None:
        return "not in the directory", False
    if user.state != "active":
        return f"{user.state} ({user.detail})", False
    if policy.required_groups and user.id not in snap.members:
        wanted = ", ".join(policy.required_groups)
        return f"active but in none of the groups that route here ({wanted})", False
    if policy.required_groups:
        return "active, in a group that routes here", True
    return "active", True


def _activity(
    account: Account,
    statuses: dict[str, str],
    entitled_in: list[str],
    settings: ReviewSettings,
    now: datetime,
) -> Finding:
    where = ", ".join(entitled_in)
    reclaim = settings.reclaim_after_days
    if account.last_sign_in_at is None and account.sign_in_count == 0:
        age = _days(now, account.created_at)
        if age is None or age >= settings.new_account_grace_days:
            created = (
                f"account created {account.created_at.date().isoformat()}, {age} days ago"
                if age is not None and account.created_at is not None
                else "creation date unknown"
            )
            action: Action | None = (
                "disable" if reclaim and age is not None and age >= reclaim and account.enabled else None
            )
            return Finding(account, "never_signed_in", f"never signed in to LearnUpon ({created}; active in {where})",
                           action, statuses)  # fmt: skip
        return Finding(
            account, "entitled", f"active in {where}; new account, not signed in yet", None, statuses
        )
    idle = _days(now, account.last_sign_in_at)
    if idle is not None and idle >= settings.inactive_after_days:
        last = account.last_sign_in_at.date().isoformat() if account.last_sign_in_at else "?"
        action = "disable" if reclaim and idle >= reclaim and account.enabled else None
        return Finding(account, "inactive",
                       f"inactive for {idle} days: last LearnUpon sign-in {last} (limit {settings.inactive_after_days}; "
                       f"active in {where})", action, statuses)  # fmt: skip
    return Finding(account, "entitled", f"active in {where}", None, statuses)


def _orphan_action(account: Account, settings: ReviewSettings) -> Action | None:
    if settings.orphan_action == "delete":
        return "delete"
    return "disable" if account.enabled else None


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, (now - then).days)
