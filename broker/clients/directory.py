"""What an access review needs from an upstream directory (Entra ID, Okta, Google Workspace): every user with
their state, the members of the groups that route to a portal, and last sign-ins where the directory has them.

Each directory client reads the whole directory in few listing calls (never one call per user) and returns one
`DirectorySnapshot`; a directory that cannot be read raises `DirectoryUnavailable` and the review marks its
users **unknown** instead of acting on a partial picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from broker.errors import BrokerError

# active: may sign in; the others each say why not
UserState = Literal["active", "disabled", "suspended", "deprovisioned", "archived", "deleted"]


class DirectoryUnavailable(BrokerError):
    """The directory could not be read completely (network, throttling, 5xx, refused credentials)."""

    check = "directory_unavailable"


@dataclass(frozen=True)
class DirectoryUser:
    """One account in a directory. `emails` are lower-case (primary address, UPN, login, aliases)."""

    id: str
    emails: frozenset[str]
    state: UserState
    detail: str  # the directory's own words for the state: "accountEnabled false", "status SUSPENDED"
    last_sign_in: datetime | None = None


@dataclass
class DirectorySnapshot:
    """A directory as read at one moment.

    `routing_groups` maps the id of each group matching the wanted names to its name; `members` holds the ids
    of users in any of them (nested membership included where the directory resolves it). `sign_ins_known`
    says whether `last_sign_in` was read (Graph needs AuditLog.Read.All and Entra ID P1 for it);
    `notes` say what was left out and why. `requests` counts the HTTP requests the snapshot cost.
    """

    kind: str
    users: list[DirectoryUser] = field(default_factory=list)
    routing_groups: dict[str, str] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    sign_ins_known: bool = False
    notes: list[str] = field(default_factory=list)
    requests: int = 0

    def by_email(self) -> dict[str, DirectoryUser]:
        """Each email → its user; an active account wins over a disabled or deleted one with the same email."""
        found: dict[str, DirectoryUser] = {}
        for user in self.users:
            for email in user.emails:
                if email not in found or (user.state == "active" and found[email].state != "active"):
                    found[email] = user
        return found


class Directory(Protocol):
    """An upstream directory the access review can read (EntraDirectory, OktaDirectory, GoogleDirectory)."""

    kind: str

    def snapshot(self, group_names: Iterable[str]) -> DirectorySnapshot:
        """Every user, and the members of the groups whose names match `group_names` (names or patterns,
        case-insensitive; empty: no group is looked up). Raises DirectoryUnavailable."""
        ...


def lower_emails(*values: object) -> frozenset[str]:
    """The email-looking values, lower-cased (directories hold mixed case; LearnUpon matches any case)."""
    emails: set[str] = set()
    for value in values:
        items = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for item in items:
            if isinstance(item, str) and "@" in item:
                emails.add(item.strip().lower())
    return frozenset(emails)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from an API (`2026-03-01T10:00:00Z`, `...+00:00`, or a date), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
