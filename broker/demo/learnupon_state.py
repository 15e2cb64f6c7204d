"""One fake LearnUpon portal in memory (users, groups, memberships, enrollments, limits, faults, request log),
shared by the fake REST API (`learnupon_api`) and the mock SAML portal, with LearnUpon's rules and errors.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PAGE_SIZE = 500
USER_TYPES = ("learner", "instructor", "manager", "admin")
# Fields a user record may carry besides the ones set explicitly (from LearnUpon's user attributes).
USER_FIELDS = frozenset(
    "email username first_name last_name language user_type enabled membership_type CustomData account_expires"
    " timezone_id can_enroll can_unenroll_users can_mark_complete can_move_groups can_act_as_instructor"
    " can_manage_trainings can_manage_sessions tutor_can_edit_their_courses tutor_can_create_courses"
    " change_password_on_first_login sf_contact_id sf_user_id".split()
)


class FakeApiError(Exception):
    """An error the fake answers with `status` and `{"message": ..., "response_code": status}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class AlreadyExists(FakeApiError):
    """Unique email, group title, membership or enrollment violated (LearnUpon answers 422)."""

    def __init__(self, message: str):
        super().__init__(422, message)


class NotFound(FakeApiError):
    def __init__(self, message: str):
        super().__init__(404, message)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received; `path` is relative to the API root, e.g. `users/search`."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None


@dataclass
class _Faults:
    fail_statuses: deque[int] = field(default_factory=deque)
    retry_after: int | None = None
    delay_seconds: float = 0.0
    delay_remaining: int | None = None  # None: every request until cleared
    hidden_searches: int = 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LearnUponState:
    """One LearnUpon portal in memory: users, groups, memberships, enrollments, API keys, limits and faults.

    Every method takes the state's lock, so the API's request threads and the portal mock can share it.
    Records are plain dicts shaped like the API's JSON; methods return copies.
    """

    def __init__(
        self,
        portal: str = "demo",
        *,
        api_username: str = "demo-api-user",
        api_password: str = "demo-api-key",  # noqa: S107 - the fake's public demo key
        rate_limit_per_minute: int = 1000,
        rate_limit_per_week: int = 100_000,
        rate_limit_headers: bool = True,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.portal = portal
        self.api_username = api_username
        self.api_password = api_password
        self.page_size = page_size
        # LearnUpon documents X-LU-Rate-Limit-* headers; clients must work without them (429 is the signal)
        self._initial_rate_limit_headers = rate_limit_headers
        self._clock = clock
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._initial_limits = (rate_limit_per_minute, rate_limit_per_week)
        self.reset()

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all data, the request log, the rate-limit window and the faults; limits back to initial."""
        with self._lock:
            self._rate_limit_per_minute, self._rate_limit_per_week = self._initial_limits
            self.rate_limit_headers = self._initial_rate_limit_headers
            self._users: dict[int, dict[str, Any]] = {}
            self._passwords: dict[int, str] = {}
            self._groups: dict[int, dict[str, Any]] = {}
            self._memberships: dict[int, dict[str, Any]] = {}
            self._enrollments: dict[int, dict[str, Any]] = {}
            self._courses: dict[int, str] = {}
            self._learning_paths: dict[int, str] = {}
            self._lp_enrollments: dict[int, dict[str, Any]] = {}
            self._next_id = 1000
            self._log: list[LoggedRequest] = []
            self._minute_window: deque[float] = deque()
            self._week_count = 0
            self._faults = _Faults()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- users -----------------------------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        *,
        first_name: str = "",
        last_name: str = "",
        password: str | None = None,
        user_type: str = "learner",
        enabled: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a user; `AlreadyExists` when the email (case-insensitive) is taken."""
        if not email or "@" not in email:
            raise FakeApiError(400, "Email is invalid")
        if user_type not in USER_TYPES:
            raise FakeApiError(400, f"User type must be one of {', '.join(USER_TYPES)}")
        unknown = set(fields) - USER_FIELDS
        if unknown:
            raise FakeApiError(400, f"Unknown attribute(s): {', '.join(sorted(unknown))}")
        with self._lock:
            if self._find_user(email) is not None:
                raise AlreadyExists("Email has already been taken - a user already exists with this email")
            user_id = self._new_id()
            now = _now()
            user = {
                "id": user_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "user_type": user_type,
                "enabled": enabled,
                "locale": fields.pop("language", "en"),
                "created_at": now,
                "updated_at": now,
                "last_sign_in_at": None,
                "sign_in_count": 0,
                "number_of_enrollments": 0,
                "CustomData": {},
            }
            user.update(fields)
            self._users[user_id] = user
            self._passwords[user_id] = password or secrets.token_urlsafe(16)
            return dict(user)

    def _find_user(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        for user in self._users.values():
            if user["email"].lower() == wanted:
                return user
        return None

    def find_user(self, email: str) -> dict[str, Any] | None:
        """The user with this email (case-insensitive), or None."""
        with self._lock:
            user = self._find_user(email)
            return dict(user) if user else None

    def get_user(self, user_id: int) -> dict[str, Any] | None:
        with self._lock:
            user = self._users.get(int(user_id))
            return dict(user) if user else None

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(u) for u in self._users.values()]

    def update_user(self, user_id: int, **fields: Any) -> dict[str, Any]:
        """Change fields of a user (`new_email` renames); `NotFound`, `AlreadyExists` on a taken email."""
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise NotFound("User not found")
            fields.pop("email", None)  # the email identifies the user; `new_email` changes it
            new_email = fields.pop("new_email", None)
            password = fields.pop("password", None)
            if "language" in fields:
                fields["locale"] = fields.pop("language")
            unknown = set(fields) - USER_FIELDS - {"locale"}
            if unknown:
                raise FakeApiError(400, f"Unknown attribute(s): {', '.join(sorted(unknown))}")
            if "user_type" in fields and fields["user_type"] not in USER_TYPES:
                raise FakeApiError(400, f"User type must be one of {', '.join(USER_TYPES)}")
            if new_email:
                other = self._find_user(new_email)
                if other is not None and other["id"] != user["id"]:
                    raise AlreadyExists("Email has already been taken")
                user["email"] = new_email
            if password:
                self._passwords[user["id"]] = password
            if "CustomData" in fields:
                user["CustomData"] = {**user.get("CustomData", {}), **(fields.pop("CustomData") or {})}
            user.update(fields)
            user["updated_at"] = _now()
            return dict(user)

    def delete_user(self, user_id: int) -> None:
        with self._lock:
            if self._users.pop(int(user_id), None) is None:
                raise NotFound("User not found")
            self._passwords.pop(int(user_id), None)
            for mid in [m for m, rec in self._memberships.items() if rec["user_id"] == int(user_id)]:
                self._drop_membership(mid)

    def check_password(self, email: str, password: str) -> bool:
        """For the portal mock's local login (`users/sign_in?no_sso=true`)."""
        with self._lock:
            user = self._find_user(email)
            return user is not None and hmac.compare_digest(self._passwords[user["id"]], password)

    def record_sign_in(self, user_id: int) -> None:
        """The portal mock calls this when a SAML login lands."""
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise NotFound("User not found")
            user["sign_in_count"] += 1
            user["last_sign_in_at"] = _now()

    def set_history(
        self, user_id: int, *, created_at: str, last_sign_in_at: str | None = None, sign_in_count: int = 0
    ) -> None:
        """Give a user a past (for the demo's and tests' planted accounts): when it was made, its sign-ins."""
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise NotFound("User not found")
            user.update(created_at=created_at, last_sign_in_at=last_sign_in_at, sign_in_count=sign_in_count)

    # -- groups ----------------------------------------------------------------------------------------------

    def create_group(self, title: str, description: str = "", sso_sync: bool = False) -> dict[str, Any]:
        """Create a group; titles are unique (case-insensitive), `AlreadyExists` otherwise."""
        if not title or not title.strip():
            raise FakeApiError(400, "Title can't be blank")
        with self._lock:
            if self._find_group(title) is not None:
                raise AlreadyExists("Title has already been taken")
            group_id = self._new_id()
            now = _now()
            group = {
                "id": group_id,
                "title": title,
                "description": description or "",
                "sso_sync": bool(sso_sync),
                "created_at": now,
                "updated_at": now,
                "number_of_members": 0,
            }
            self._groups[group_id] = group
            return dict(group)

    def _find_group(self, title: str) -> dict[str, Any] | None:
        wanted = title.strip().lower()
        for group in self._groups.values():
            if group["title"].lower() == wanted:
                return group
        return None

    def find_group(self, title: str) -> dict[str, Any] | None:
        with self._lock:
            group = self._find_group(title)
            return dict(group) if group else None

    def get_group(self, group_id: int) -> dict[str, Any] | None:
        with self._lock:
            group = self._groups.get(int(group_id))
            return dict(group) if group else None

    def groups(self, title: str | None = None) -> list[dict[str, Any]]:
        """All groups, or those whose title equals `title` (case-insensitive)."""
        with self._lock:
            return [
                dict(gr)
                for gr in self._groups.values()
                if title is None or gr["title"].lower() == title.strip().lower()
            ]

    # -- memberships -----------------------------------------------------------------------------------------

    def add_membership(self, group_id: int, user_id: int) -> dict[str, Any]:
        """Put a user in a group; `NotFound` for an unknown user or group, `AlreadyExists` when a member."""
        with self._lock:
            group = self._groups.get(int(group_id))
            if group is None:
                raise NotFound("Group not found")
            if int(user_id) not in self._users:
                raise NotFound("User not found")
            for rec in self._memberships.values():
                if rec["group_id"] == int(group_id) and rec["user_id"] == int(user_id):
                    raise AlreadyExists("User is already a member of this group")
            membership_id = self._new_id()
            rec = {
                "id": membership_id,
                "group_id": int(group_id),
                "user_id": int(user_id),
                "created_at": _now(),
            }
            self._memberships[membership_id] = rec
            group["number_of_members"] += 1
            return dict(rec)

    def _drop_membership(self, membership_id: int) -> None:
        rec = self._memberships.pop(membership_id)
        group = self._groups.get(rec["group_id"])
        if group is not None:
            group["number_of_members"] -= 1

    def remove_membership(self, membership_id: int) -> None:
        with self._lock:
            if int(membership_id) not in self._memberships:
                raise NotFound("Group membership not found")
            self._drop_membership(int(membership_id))

    def remove_membership_of(self, group_id: int, user_id: int) -> None:
        """Remove by (group, user), like `DELETE group_memberships/0` with a body."""
        with self._lock:
            for mid, rec in self._memberships.items():
                if rec["group_id"] == int(group_id) and rec["user_id"] == int(user_id):
                    self._drop_membership(mid)
                    return
            raise NotFound("Group membership not found")

    def memberships_of(self, user_id: int) -> list[dict[str, Any]]:
        """Membership records `{id, group_id, user_id, created_at}` of a user."""
        with self._lock:
            return [dict(rec) for rec in self._memberships.values() if rec["user_id"] == int(user_id)]

    def groups_of(self, user_id: int) -> list[dict[str, Any]]:
        """The group records a user belongs to (what `GET group_memberships?user_id=` lists)."""
        with self._lock:
            return [
                dict(self._groups[rec["group_id"]])
                for rec in self._memberships.values()
                if rec["user_id"] == int(user_id)
            ]

    def members_of(self, group_id: int) -> list[dict[str, Any]]:
        """User records in a group, each with its `group_membership_id`."""
        with self._lock:
            return [
                {**self._users[rec["user_id"]], "group_membership_id": rec["id"]}
                for rec in self._memberships.values()
                if rec["group_id"] == int(group_id)
            ]

    # -- courses and enrollments -----------------------------------------------------------------------------

    def add_course(self, course_id: int, name: str) -> None:
        """Declare a course. While none is declared, any course id is accepted (named `Course <id>`)."""
        with self._lock:
            self._courses[int(course_id)] = name

    def enroll(self, user_id: int, course_id: int) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise NotFound("User not found")
            if self._courses and int(course_id) not in self._courses:
                raise NotFound("Course not found")
            for rec in self._enrollments.values():
                if rec["user_id"] == int(user_id) and rec["course_id"] == int(course_id):
                    raise AlreadyExists("User is already enrolled on this course")
            enrollment_id = self._new_id()
            now = _now()
            rec = {
                "id": enrollment_id,
                "user_id": int(user_id),
                "email": user["email"],
                "first_name": user["first_name"],
                "last_name": user["last_name"],
                "course_id": int(course_id),
                "course_name": self._courses.get(int(course_id), f"Course {course_id}"),
                "status": "not_started",
                "date_enrolled": now,
                "created_at": now,
                "percentage_complete": 0,
            }
            self._enrollments[enrollment_id] = rec
            user["number_of_enrollments"] += 1
            return dict(rec)

    def enrollments_of(self, user_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(rec) for rec in self._enrollments.values() if rec["user_id"] == int(user_id)]

    def remove_enrollment(self, enrollment_id: int) -> None:
        """Unenrol (`DELETE enrollments/{id}`)."""
        with self._lock:
            rec = self._enrollments.pop(int(enrollment_id), None)
            if rec is None:
                raise NotFound("Enrollment not found")
            user = self._users.get(rec["user_id"])
            if user is not None:
                user["number_of_enrollments"] -= 1

    def courses(self, name: str | None = None) -> list[dict[str, Any]]:
        """Declared courses; `name` matches as a case-insensitive pattern (a part of the title)."""
        with self._lock:
            return [
                {"id": cid, "name": title, "published_status_id": "published"}
                for cid, title in sorted(self._courses.items())
                if name is None or name.strip().lower() in title.lower()
            ]

    def course_id_named(self, name: str) -> int:
        with self._lock:
            for cid, title in self._courses.items():
                if title.lower() == name.strip().lower():
                    return cid
        raise NotFound("Course not found")

    # -- learning paths ----------------------------------------------------------------------------------------

    def add_learning_path(self, learning_path_id: int, name: str) -> None:
        with self._lock:
            self._learning_paths[int(learning_path_id)] = name

    def learning_paths(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"id": lp_id, "name": title, "published_status_id": "published"}
                for lp_id, title in sorted(self._learning_paths.items())
                if name is None or name.strip().lower() in title.lower()
            ]

    def learning_path_id_named(self, name: str) -> int:
        with self._lock:
            for lp_id, title in self._learning_paths.items():
                if title.lower() == name.strip().lower():
                    return lp_id
        raise NotFound("Learning path not found")

    def enroll_learning_path(self, user_id: int, learning_path_id: int) -> dict[str, Any]:
        with self._lock:
            if int(user_id) not in self._users:
                raise NotFound("User not found")
            if int(learning_path_id) not in self._learning_paths:
                raise NotFound("Learning path not found")
            for rec in self._lp_enrollments.values():
                if rec["user_id"] == int(user_id) and rec["lp_id"] == int(learning_path_id):
                    raise AlreadyExists("User is already enrolled on this learning path")
            enrollment_id = self._new_id()
            rec = {
                "id": enrollment_id,
                "user_id": int(user_id),
                "lp_id": int(learning_path_id),
                "lp_name": self._learning_paths[int(learning_path_id)],
                "status": "not_started",
                "date_enrolled": _now(),
            }
            self._lp_enrollments[enrollment_id] = rec
            return dict(rec)

    def learning_path_enrollments_of(self, user_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(rec) for rec in self._lp_enrollments.values() if rec["user_id"] == int(user_id)]

    # -- faults, limits and the request log -------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, *, retry_after: int | None = None) -> None:
        """The next `count` API requests answer `status` (e.g. 429, 500, 503), with `Retry-After` if given."""
        with self._lock:
            self._faults.fail_statuses.extend([status] * count)
            self._faults.retry_after = retry_after

    def delay(self, seconds: float, count: int | None = None) -> None:
        """Sleep `seconds` before answering the next `count` API requests (all of them when None)."""
        with self._lock:
            self._faults.delay_seconds = seconds
            self._faults.delay_remaining = count

    def hide_from_search(self, count: int = 1) -> None:
        """The next `count` `users/search` requests answer 404 even for existing users (search lag)."""
        with self._lock:
            self._faults.hidden_searches += count

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = _Faults()

    def set_rate_limit(self, per_minute: int, per_week: int | None = None) -> None:
        """Change the limits; the current minute's window is kept."""
        with self._lock:
            self._rate_limit_per_minute = per_minute
            if per_week is not None:
                self._rate_limit_per_week = per_week

    def request_log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def calls(self) -> list[tuple[str, str]]:
        """`(method, path)` of every logged request, in order: `[("GET", "users/search"), ...]`."""
        with self._lock:
            return [(r.method, r.path) for r in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no API request is being answered (e.g. a delayed one a client gave up on)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    # The fake API's gate (`learnupon_api`) calls the methods below around each request.

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _log_request(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def _admit(self) -> tuple[int | None, dict[str, str]]:
        """Rate limit and faults for one request: (status to answer instead, or None; headers to add)."""
        with self._lock:
            now = self._clock()
            while self._minute_window and self._minute_window[0] <= now - 60:
                self._minute_window.popleft()
            limit = self._rate_limit_per_minute
            if len(self._minute_window) >= limit or self._week_count >= self._rate_limit_per_week:
                wait = 60 - (now - self._minute_window[0]) if self._minute_window else 60
                limited = {"Retry-After": str(max(1, math.ceil(wait)))}
                if self.rate_limit_headers:
                    limited["X-LU-Rate-Limit-Remaining-Minute"] = "0"
                    limited["X-LU-Rate-Limit-Remaining-Week"] = str(
                        max(0, self._rate_limit_per_week - self._week_count)
                    )
                return 429, limited
            self._minute_window.append(now)
            self._week_count += 1
            headers = {
                "X-LU-Rate-Limit-Remaining-Minute": str(max(0, limit - len(self._minute_window))),
                "X-LU-Rate-Limit-Remaining-Week": str(max(0, self._rate_limit_per_week - self._week_count)),
            }
            if not self.rate_limit_headers:
                headers = {}
            if self._faults.fail_statuses:
                status = self._faults.fail_statuses.popleft()
                if self._faults.retry_after is not None:
                    headers["Retry-After"] = str(self._faults.retry_after)
                return status, headers
            return None, headers

    def _take_delay(self) -> float:
        with self._lock:
            f = self._faults
            if f.delay_seconds <= 0:
                return 0.0
            seconds = f.delay_seconds
            if f.delay_remaining is not None:
                f.delay_remaining -= 1
                if f.delay_remaining <= 0:
                    f.delay_seconds, f.delay_remaining = 0.0, None
            return seconds

    def _take_hidden_search(self) -> bool:
        with self._lock:
            if self._faults.hidden_searches > 0:
                self._faults.hidden_searches -= 1
                return True
            return False


__all__ = [
    "AlreadyExists",
    "FakeApiError",
    "LearnUponState",
    "LoggedRequest",
    "NotFound",
]
