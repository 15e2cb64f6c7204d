"""Microsoft Entra ID as a directory for access reviews, read through Microsoft Graph listings.

Cost: one `GET /users` page per 500 users (999 without signInActivity), one `GET /groups` page per 999 groups,
one `transitiveMembers` page per 999 members of each routing group, and the deleted users' pages — never a
request per user. Permissions: User.Read.All (users, deleted users), GroupMember.Read.All (groups, members),
AuditLog.Read.All and an Entra ID P1 licence for signInActivity (left out, with a note, when refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from broker.clients.directory import (
    DirectorySnapshot,
    DirectoryUnavailable,
    DirectoryUser,
    lower_emails,
)
from broker.clients.graph import GraphAuthError, GraphClient, GraphError
from broker.rules.names import matches_any

USERS_PAGE = 999
USERS_PAGE_WITH_SIGN_INS = 500  # Graph's maximum page size when signInActivity is selected
LISTING_PAGE = 999
MAX_PAGES = 10_000  # 5 million users: a bound against a nextLink loop, not a real limit


class EntraDirectory:
    """Reads users, routing groups and their members from Graph with one GraphClient (app-only token)."""

    kind = "entra"

    def __init__(
        self,
        graph: GraphClient,
        *,
        static_map: Mapping[str, str] | None = None,
        sign_in_activity: bool = True,
        budget: float = 600.0,
    ):
        self.graph = graph
        # group GUID → the LearnUpon name the broker gives it at login: required_groups are written in those
        self.static_map = {gid.lower(): name for gid, name in (static_map or {}).items()}
        self.sign_in_activity = sign_in_activity
        self.budget = budget

    def snapshot(self, group_names: Iterable[str]) -> DirectorySnapshot:
        patterns = list(group_names)
        before = sum(self.graph.counters.values())
        snap = DirectorySnapshot(kind=self.kind)
        try:
            self._read_users(snap)
            self._read_deleted(snap)
            if patterns:
                self._read_routing_groups(snap, patterns)
        except GraphError as exc:
            raise DirectoryUnavailable(f"entra: {exc}") from None
        finally:
            snap.requests = sum(self.graph.counters.values()) - before
        return snap

    def _list(self, url: str, what: str, permission: str) -> list[dict[str, Any]]:
        return self.graph.get_all(
            url, what=what, permission=permission, budget=self.budget, max_pages=MAX_PAGES
        )

    def _read_users(self, snap: DirectorySnapshot) -> None:
        fields = "id,mail,userPrincipalName,accountEnabled"
        users: list[dict[str, Any]] | None = None
        if self.sign_in_activity:
            try:
                users = self._list(
                    f"/v1.0/users?$select={fields},signInActivity&$top={USERS_PAGE_WITH_SIGN_INS}",
                    "users", "AuditLog.Read.All",
                )  # fmt: skip
                snap.sign_ins_known = True
            except GraphAuthError:
                snap.notes.append(
                    "entra: signInActivity refused (needs AuditLog.Read.All and Entra ID P1); "
                    "last sign-ins come from LearnUpon only"
                )
        if users is None:
            users = self._list(f"/v1.0/users?$select={fields}&$top={USERS_PAGE}", "users", "User.Read.All")
        for obj in users:
            uid = obj.get("id")
            if not isinstance(uid, str):
                continue
            enabled = obj.get("accountEnabled") is not False
            snap.users.append(
                DirectoryUser(
                    id=uid.lower(),
                    emails=lower_emails(obj.get("mail"), obj.get("userPrincipalName")),
                    state="active" if enabled else "disabled",
                    detail="accountEnabled true" if enabled else "accountEnabled false",
                    last_sign_in=_last_sign_in(obj.get("signInActivity")),
                )
            )

    def _read_deleted(self, snap: DirectorySnapshot) -> None:
        try:
            deleted = self._list(
                "/v1.0/directory/deletedItems/microsoft.graph.user"
                f"?$select=id,mail,userPrincipalName,deletedDateTime&$top={LISTING_PAGE}",
                "deletedItems", "User.Read.All",
            )  # fmt: skip
        except GraphAuthError:
            snap.notes.append("entra: deleted users not readable; they show as not in the directory")
            return
        for obj in deleted:
            uid = obj.get("id")
            if isinstance(uid, str):
                when = obj.get("deletedDateTime")
                snap.users.append(
                    DirectoryUser(
                        id=uid.lower(),
                        emails=lower_emails(obj.get("mail"), obj.get("userPrincipalName")),
                        state="deleted",
                        detail=f"deleted {str(when)[:10]}" if when else "deleted",
                    )
                )

    def _read_routing_groups(self, snap: DirectorySnapshot, patterns: list[str]) -> None:
        groups = self._list(
            f"/v1.0/groups?$select=id,displayName&$top={LISTING_PAGE}", "groups", "GroupMember.Read.All"
        )
        for obj in groups:
            gid, name = obj.get("id"), obj.get("displayName")
            if not isinstance(gid, str):
                continue
            names = [n for n in (name, self.static_map.get(gid.lower())) if isinstance(n, str)]
            if names and matches_any(names, patterns):
                snap.routing_groups[gid.lower()] = self.static_map.get(gid.lower()) or str(name)
        for gid in snap.routing_groups:
            members = self._list(
                f"/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user?$select=id&$top={LISTING_PAGE}",
                "groupMembers", "GroupMember.Read.All",
            )  # fmt: skip
            snap.members.update(m["id"].lower() for m in members if isinstance(m.get("id"), str))


def _last_sign_in(activity: Any) -> datetime | None:
    """The later of the interactive and non-interactive sign-ins (either counts as using the account)."""
    if not isinstance(activity, dict):
        return None
    times = []
    for key in ("lastSignInDateTime", "lastNonInteractiveSignInDateTime", "lastSuccessfulSignInDateTime"):
        value = activity.get(key)
        if isinstance(value, str) and value:
            try:
                times.append(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                continue
    return max(times) if times else None
