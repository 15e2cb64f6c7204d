"""The LearnUpon API calls the broker makes: users, groups, memberships, enrolments, the course catalogue.

Each call's shape is documented by LearnUpon or used by code talking to real portals (docs/learnupon-api.md);
the request loop under them is broker.clients.learnupon.transport.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from broker.clients.learnupon.answers import id_of, list_of
from broker.clients.learnupon.errors import LearnUponError, LearnUponMaybeDone, LearnUponNotFound
from broker.clients.learnupon.transport import LearnUponTransport


def generate_password(length: int = 24) -> str:
    """A random password meeting usual complexity rules (upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits + "!#%+-.:=?@_"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


class LearnUponClient(LearnUponTransport):
    """One portal's API (see `LearnUponTransport` for retries, budgets and counters). Thread-safe; share one
    instance per portal so connections are pooled."""

    # -- users -----------------------------------------------------------------------------------------------

    def find_user_by_email(self, email: str) -> dict[str, Any] | None:
        """The user with this email, or None (LearnUpon answers 404 when there is none)."""
        response = self._request("GET", "users/search", params={"email": email}, ok_statuses=(404,))
        if response.status_code == 404:
            return None
        wanted = email.strip().lower()
        for user in list_of(self._json(response, "GET", "users/search"), "user"):
            if str(user.get("email", "")).lower() == wanted:
                return user
        return None

    def create_user(self, fields: dict[str, Any]) -> int:
        """Create a user from `User` fields; returns its id. A strong random password is set when none is
        given (never logged or shown). `LearnUponConflict` when the email is taken."""
        fields = dict(fields)
        if not fields.get("password"):
            fields["password"] = generate_password()
        hide = (str(fields["password"]),)
        for _ in range(2):
            try:
                response = self._request("POST", "users", json={"User": fields}, hide=hide, creates=True)
                return id_of(self._json(response, "POST", "users"), "user", "POST", "users")
            except LearnUponMaybeDone as exc:
                # the first POST may have created the user: look before sending it again
                found = self.find_user_by_email(str(fields.get("email", "")))
                if found is not None and found.get("id") is not None:
                    return int(found["id"])
                last = exc
        raise last

    def update_user(self, user_id: int, fields: dict[str, Any]) -> None:
        """Change only the given fields of a user."""
        hide = (str(fields["password"]),) if fields.get("password") else ()
        self._request("PUT", f"users/{int(user_id)}", json={"User": dict(fields)}, hide=hide)

    def change_email(self, current_email: str, new_email: str, fields: dict[str, Any] | None = None) -> None:
        """Give a user a new address: `PUT users/0` with the current `email` and `new_email` (plus any other
        changed fields), the form LearnUpon documents for changing an e-mail or username ("Update a user")."""
        body = {**(fields or {}), "email": current_email, "new_email": new_email}
        self._request("PUT", "users/0", json={"User": body})

    def get_user(self, user_id: int) -> dict[str, Any] | None:
        """`GET users/{id}`, or None when LearnUpon has no such user."""
        response = self._request("GET", f"users/{int(user_id)}", ok_statuses=(404,))
        if response.status_code == 404:
            return None
        users = list_of(self._json(response, "GET", f"users/{int(user_id)}"), "user")
        return users[0] if users else None

    def list_users(self) -> list[dict[str, Any]]:
        """Every user of the portal (`GET users`, page after page of 500)."""
        return self._paginate("users", "user", max_pages=100_000)

    def delete_user(self, user_id: int) -> None:
        """`DELETE users/{id}`: the account and its history go; disabling keeps them."""
        self._request("DELETE", f"users/{int(user_id)}")

    # -- groups ----------------------------------------------------------------------------------------------

    def list_groups(self, title: str | None = None) -> list[dict[str, Any]]:
        """All groups (every page), or those LearnUpon matches to `title`."""
        return self._paginate("groups", "groups", {"title": title} if title is not None else None)

    def create_group(self, title: str, description: str = "", sso_sync: bool = True) -> int:
        """Create a group (synced with SAML SSO by default); returns its id. `LearnUponConflict` if taken."""
        body = {"Group": {"title": title, "description": description, "sso_sync": sso_sync}}
        for _ in range(2):
            try:
                response = self._request("POST", "groups", json=body, creates=True)
                return id_of(self._json(response, "POST", "groups"), "group", "POST", "groups")
            except LearnUponMaybeDone as exc:
                # the first POST may have created the group: look before sending it again
                for group in self.list_groups(title=title):
                    if str(group.get("title", "")).lower() == title.lower() and group.get("id") is not None:
                        return int(group["id"])
                last = exc
        raise last

    # -- memberships -----------------------------------------------------------------------------------------

    def list_memberships(self, user_id: int) -> list[dict[str, Any]]:
        """The groups a user belongs to (`GET group_memberships?user_id=` lists group records)."""
        return self._paginate("group_memberships", "group", {"user_id": int(user_id)})

    def add_membership(self, group_id: int, user_id: int) -> None:
        """Put a user in a group (`POST group_memberships {"GroupMembership": {group_id, user_id}}`)."""
        body = {"GroupMembership": {"group_id": int(group_id), "user_id": int(user_id)}}
        self._request("POST", "group_memberships", json=body)

    def find_membership_id(self, group_id: int, user_id: int) -> int | None:
        """The id of the user's membership of the group, from the group's member list in version 1.1 (the one
        that shows membership ids); None when the user is not a member."""
        members = self._paginate(
            "group_memberships", "user", {"group_id": int(group_id), "version_id": "1.1"}
        )
        for member in members:
            if str(member.get("id")) == str(int(user_id)):
                membership_id = member.get("group_membership_id")
                if membership_id is None:
                    raise LearnUponError(
                        f"LearnUpon GET group_memberships?group_id={int(group_id)}: the member list shows no "
                        "group_membership_id, so the membership cannot be removed",
                        method="GET",
                        path="group_memberships",
                    )
                return int(membership_id)
        return None

    def remove_membership(self, membership_id: int) -> None:
        """`DELETE group_memberships/{id}`."""
        self._request("DELETE", f"group_memberships/{int(membership_id)}")

    # -- enrollments -----------------------------------------------------------------------------------------

    def enroll(self, user_id: int, course_id: int) -> None:
        """Enrol a user on a course (`POST enrollments {"Enrollment": {user_id, course_id}}`)."""
        body = {"Enrollment": {"user_id": int(user_id), "course_id": int(course_id)}}
        self._request("POST", "enrollments", json=body)

    def list_enrollments(self, user_id: int) -> list[dict[str, Any]]:
        """A user's course enrolments (`GET enrollments/search?user_id=`)."""
        return self._paginate("enrollments/search", "enrollments", {"user_id": int(user_id)})

    def unenroll(self, enrollment_id: int) -> None:
        """`DELETE enrollments/{id}` (without `remove_from_history`: completed history stays)."""
        self._request("DELETE", f"enrollments/{int(enrollment_id)}")

    def enroll_learning_path(self, user_id: int, learning_path_id: int) -> None:
        """`POST learning_path_enrollments {"Enrollment": {user_id, lp_id}}`."""
        body = {"Enrollment": {"user_id": int(user_id), "lp_id": int(learning_path_id)}}
        self._request("POST", "learning_path_enrollments", json=body)

    def list_learning_path_enrollments(self, user_id: int) -> list[dict[str, Any]]:
        """A user's learning path enrolments (`GET learning_path_enrollments/search?user_id=`)."""
        return self._paginate(
            "learning_path_enrollments/search", "learning_path_enrollments", {"user_id": int(user_id)}
        )

    # -- the catalogue: titles → ids, looked up once ------------------------------------------------------

    def find_course_id(self, title: str) -> int:
        """The id of the course titled `title` (exact, case-insensitive), via `GET courses?name=`."""
        return self._find_in_catalog("courses", "courses", title)

    def find_learning_path_id(self, title: str) -> int:
        """The id of the learning path titled `title`, via `GET learning_paths?name=`."""
        return self._find_in_catalog("learning_paths", "learning_paths", title)

    def _find_in_catalog(self, path: str, key: str, title: str) -> int:
        wanted = title.strip().lower()
        with self._lock:
            known = self._catalog.get((path, wanted))
        if known is not None:
            return known
        # `name` is a pattern match: several may come back; only an exact title counts
        found = {
            int(item["id"])
            for item in self._paginate(path, key, {"name": title.strip()})
            if str(item.get("name", "")).strip().lower() == wanted and item.get("id") is not None
        }
        what = "course" if path == "courses" else "learning path"
        if not found:
            raise LearnUponNotFound(
                f"LearnUpon has no {what} titled {title!r}", status=404, method="GET", path=path
            )
        if len(found) > 1:
            raise LearnUponError(
                f"LearnUpon has {len(found)} {what}s titled {title!r}: give the id instead",
                method="GET",
                path=path,
            )
        (found_id,) = found
        with self._lock:
            self._catalog[(path, wanted)] = found_id
        return found_id
