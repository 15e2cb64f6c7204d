"""A fake of the LearnUpon REST API v1 (users, groups, memberships, enrollments) for tests and the demo.

`LearnUponState` is one portal's data with plain methods, shared by this API and the mock SAML portal, so a user
created through the API is the user the portal shows after login. `create_app(state)` serves it as a WSGI app
at `/api/v1/` (and at `/<portal>/api/v1/` when several portals share one server). It behaves like the real API
where public material says how: HTTP Basic auth, `{"User": {...}}` request wrappers, `{"user": [...]}` lists,
pages of 500 with `LU-Has-Next-Page`, `X-LU-Rate-Limit-Remaining-*` headers and 429 over the per-minute limit,
unique emails and group titles. Faults (429/5xx, slow answers, search lag) can be injected at runtime.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

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
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.portal = portal
        self.api_username = api_username
        self.api_password = api_password
        self.page_size = page_size
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
            self._users: dict[int, dict[str, Any]] = {}
            self._passwords: dict[int, str] = {}
            self._groups: dict[int, dict[str, Any]] = {}
            self._memberships: dict[int, dict[str, Any]] = {}
            self._enrollments: dict[int, dict[str, Any]] = {}
            self._courses: dict[int, str] = {}
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
            return bool(user) and hmac.compare_digest(self._passwords[user["id"]], password)

    def record_sign_in(self, user_id: int) -> None:
        """The portal mock calls this when a SAML login lands."""
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise NotFound("User not found")
            user["sign_in_count"] += 1
            user["last_sign_in_at"] = _now()

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
                return 429, {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "X-LU-Rate-Limit-Remaining-Minute": "0",
                    "X-LU-Rate-Limit-Remaining-Week": str(
                        max(0, self._rate_limit_per_week - self._week_count)
                    ),
                }
            self._minute_window.append(now)
            self._week_count += 1
            headers = {
                "X-LU-Rate-Limit-Remaining-Minute": str(max(0, limit - len(self._minute_window))),
                "X-LU-Rate-Limit-Remaining-Week": str(max(0, self._rate_limit_per_week - self._week_count)),
            }
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


# ---- HTTP ----------------------------------------------------------------------------------------------------

_STATUS_MESSAGES = {
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _error(status: int, message: str) -> Response:
    response = jsonify({"message": message, "response_code": status})
    response.status_code = status
    return response


def _state() -> LearnUponState:
    return g.learnupon_state


def _wrapped(body: Any, *names: str) -> dict[str, Any]:
    """The object inside `{"User": {...}}`; LearnUpon rejects bare JSON objects."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key.lower() in {n.lower() for n in names} and isinstance(value, dict):
                return value
    raise FakeApiError(400, f"Expected a JSON object wrapped in {names[0]!r}")


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FakeApiError(400, f"{name} must be an integer") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _paged(key: str, items: list[dict[str, Any]]) -> Response:
    state = _state()
    page = max(1, _as_int(request.args.get("page", 1), "page"))
    start = (page - 1) * state.page_size
    chunk = items[start : start + state.page_size]
    response = jsonify({key: chunk})
    response.headers["LU-Current-Page"] = str(page)
    response.headers["LU-Records-Per-Page"] = str(state.page_size)
    response.headers["LU-Has-Next-Page"] = "true" if start + state.page_size < len(items) else "false"
    return response


def api_blueprint(name: str = "learnupon_api") -> Blueprint:
    """The `/api/v1` views; the app must put the portal's state in `g.learnupon_state` (see `create_app`)."""
    bp = Blueprint(name, __name__)

    @bp.get("/users")
    def list_users():
        return _paged("user", sorted(_state().users(), key=lambda u: u["id"]))

    @bp.get("/users/search")
    def search_users():
        email = request.args.get("email", "")
        state = _state()
        user = state.find_user(email) if email else None
        if state._take_hidden_search() or user is None:
            return _error(404, "User not found")
        return jsonify({"user": [user]})

    @bp.get("/users/<int:user_id>")
    def get_user(user_id: int):
        user = _state().get_user(user_id)
        if user is None:
            return _error(404, "User not found")
        return jsonify({"user": [user]})

    @bp.post("/users")
    def create_user():
        fields = dict(_wrapped(request.get_json(silent=True), "User"))
        email = fields.pop("email", "")
        password = fields.get("password")
        if not password or len(str(password)) < 6:
            raise FakeApiError(400, "Password is too short (minimum is 6 characters)")
        if "enabled" in fields:
            fields["enabled"] = _as_bool(fields["enabled"])
        user = _state().create_user(email, **fields)
        return jsonify({"id": user["id"]}), 201

    @bp.put("/users/<int:user_id>")
    def update_user(user_id: int):
        fields = dict(_wrapped(request.get_json(silent=True), "User"))
        state = _state()
        if user_id == 0:  # documented: id 0 plus the email in the payload
            user = state.find_user(fields.get("email", ""))
            if user is None:
                raise NotFound("User not found")
            user_id = user["id"]
        if "enabled" in fields:
            fields["enabled"] = _as_bool(fields["enabled"])
        user = state.update_user(user_id, **fields)
        return jsonify({"id": user["id"]})

    @bp.delete("/users/<int:user_id>")
    def delete_user(user_id: int):
        _state().delete_user(user_id)
        return jsonify({})

    @bp.get("/groups")
    def list_groups():
        title = request.args.get("title")
        return _paged("groups", sorted(_state().groups(title), key=lambda gr: gr["id"]))

    @bp.post("/groups")
    def create_group():
        fields = _wrapped(request.get_json(silent=True), "Group")
        group = _state().create_group(
            str(fields.get("title", "")),
            str(fields.get("description") or ""),
            _as_bool(fields.get("sso_sync", False)),
        )
        return jsonify({"id": group["id"]}), 201

    @bp.get("/group_memberships")
    def list_memberships():
        state = _state()
        if "user_id" in request.args:
            return _paged("group", state.groups_of(_as_int(request.args["user_id"], "user_id")))
        if "group_id" in request.args:
            members = state.members_of(_as_int(request.args["group_id"], "group_id"))
            if request.args.get("version_id") != "1.1":  # only version 1.1 shows the membership id
                members = [{k: v for k, v in m.items() if k != "group_membership_id"} for m in members]
            return _paged("user", members)
        raise FakeApiError(400, "user_id or group_id is required")

    @bp.post("/group_memberships")
    def add_membership():
        fields = _wrapped(request.get_json(silent=True), "GroupMembership")
        rec = _state().add_membership(
            _as_int(fields.get("group_id"), "group_id"), _as_int(fields.get("user_id"), "user_id")
        )
        return jsonify({"id": rec["id"]}), 201

    @bp.delete("/group_memberships/<int:membership_id>")
    def remove_membership(membership_id: int):
        state = _state()
        if membership_id == 0:  # documented: id 0 plus {"GroupMembership": {group_id, user_id}}
            fields = _wrapped(request.get_json(silent=True), "GroupMembership")
            state.remove_membership_of(
                _as_int(fields.get("group_id"), "group_id"), _as_int(fields.get("user_id"), "user_id")
            )
        else:
            state.remove_membership(membership_id)
        return jsonify({})

    @bp.post("/enrollments")
    def enroll():
        fields = _wrapped(request.get_json(silent=True), "Enrollment")
        state = _state()
        if fields.get("user_id") is not None:
            user = state.get_user(_as_int(fields["user_id"], "user_id"))
        else:
            user = state.find_user(str(fields.get("email", "")))
        if user is None:
            raise NotFound("User not found")
        rec = state.enroll(user["id"], _as_int(fields.get("course_id"), "course_id"))
        return jsonify({"id": rec["id"], "created_at": rec["created_at"], "user_id": rec["user_id"]}), 201

    @bp.get("/enrollments/search")
    def search_enrollments():
        state = _state()
        if "user_id" in request.args:
            user_id = _as_int(request.args["user_id"], "user_id")
        else:
            user = state.find_user(request.args.get("email", ""))
            if user is None:
                return _error(404, "User not found")
            user_id = user["id"]
        return _paged("enrollments", state.enrollments_of(user_id))

    @bp.errorhandler(FakeApiError)
    def fake_error(exc: FakeApiError):
        return _error(exc.status, exc.message)

    return bp


def _authorized(state: LearnUponState) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Both compared, in constant time, so a wrong username is not faster to learn than a wrong key.
    ok_user = hmac.compare_digest(username.encode(), state.api_username.encode())
    ok_pass = hmac.compare_digest(password.encode(), state.api_password.encode())
    return ok_user and ok_pass


def create_app(states: LearnUponState | Iterable[LearnUponState]) -> Flask:
    """A WSGI app serving the fake API of one or several portals.

    `/api/v1/...` is the first (or only) portal; `/<portal>/api/v1/...` is any portal by name. Test controls:
    `POST /_fake/<portal>/faults {"fail_next": N, "status": 503, "retry_after": 1, "delay": S, "delay_count": N}`,
    `POST /_fake/<portal>/reset`, `GET /_fake/<portal>/log` (unauthenticated: loopback demo only).
    """
    if isinstance(states, LearnUponState):
        states = [states]
    by_name: dict[str, LearnUponState] = {s.portal: s for s in states}
    if not by_name:
        raise ValueError("create_app needs at least one LearnUponState")
    default = next(iter(by_name.values()))

    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["learnupon_states"] = by_name
    bp = api_blueprint()
    app.register_blueprint(bp, url_prefix="/api/v1")
    app.register_blueprint(bp, url_prefix="/<portal>/api/v1", name="learnupon_api_by_portal")
    _install_gate(app, by_name, default)
    app.register_blueprint(_control_blueprint(by_name))
    return app


def _install_gate(app: Flask, by_name: Mapping[str, LearnUponState], default: LearnUponState) -> None:
    """Auth, rate limit, faults and the request log, around every `/api/v1` request."""

    @app.url_value_preprocessor
    def pick_state(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if endpoint is None or not endpoint.startswith("learnupon_api"):
            return
        portal = (values or {}).pop("portal", None)
        g.learnupon_state = by_name.get(portal) if portal is not None else default

    @app.before_request
    def gate():
        if request.endpoint is None or not request.endpoint.startswith("learnupon_api"):
            return None
        state: LearnUponState | None = g.get("learnupon_state")
        if state is None:
            return _error(404, "Portal not found")
        state._enter()
        g.learnupon_entered = state
        if not _authorized(state):
            response = _error(401, "Unauthorized: check your API username and password")
            response.headers["WWW-Authenticate"] = 'Basic realm="LearnUpon API"'
            return response
        status, headers = state._admit()
        g.learnupon_headers = headers
        if status is not None:
            response = _error(status, _STATUS_MESSAGES.get(status, "Error"))
            response.headers.update(headers)
            return response
        pause = state._take_delay()
        if pause:
            time.sleep(pause)
        return None

    @app.teardown_request
    def leave(_exc: BaseException | None) -> None:
        state: LearnUponState | None = g.pop("learnupon_entered", None)
        if state is not None:
            state._leave()

    @app.after_request
    def record(response: Response) -> Response:
        if request.endpoint is None or not request.endpoint.startswith("learnupon_api"):
            return response
        state: LearnUponState | None = g.get("learnupon_state")
        if state is None:
            return response
        for key, value in g.get("learnupon_headers", {}).items():
            response.headers.setdefault(key, value)
        path = request.path.split("/api/v1/", 1)[-1]
        state._log_request(
            LoggedRequest(
                method=request.method,
                path=path,
                query=dict(request.args),
                status=response.status_code,
                body=request.get_json(silent=True),
            )
        )
        return response


def _control_blueprint(by_name: Mapping[str, LearnUponState]) -> Blueprint:
    bp = Blueprint("learnupon_fake_control", __name__, url_prefix="/_fake/<portal>")

    def state_for(portal: str) -> LearnUponState:
        state = by_name.get(portal)
        if state is None:
            raise FakeApiError(404, "Portal not found")
        return state

    @bp.post("/faults")
    def faults(portal: str):
        state = state_for(portal)
        body = request.get_json(silent=True) or {}
        if body.get("clear"):
            state.clear_faults()
        if body.get("fail_next"):
            state.fail_next(
                int(body["fail_next"]), int(body.get("status", 503)), retry_after=body.get("retry_after")
            )
        if body.get("delay") is not None:
            state.delay(float(body["delay"]), body.get("delay_count"))
        if body.get("rate_limit_per_minute") is not None:
            state.set_rate_limit(int(body["rate_limit_per_minute"]))
        return jsonify({"ok": True})

    @bp.post("/reset")
    def reset(portal: str):
        state_for(portal).reset()
        return jsonify({"ok": True})

    @bp.get("/log")
    def log(portal: str):
        return jsonify([asdict(r) for r in state_for(portal).request_log()])

    @bp.errorhandler(FakeApiError)
    def fake_error(exc: FakeApiError):
        return _error(exc.status, exc.message)

    return bp


def state_of(app: Flask, portal: str) -> LearnUponState:
    """The state an app built by `create_app` serves for `portal`."""
    return app.extensions["learnupon_states"][portal]


__all__ = [
    "AlreadyExists",
    "FakeApiError",
    "LearnUponState",
    "LoggedRequest",
    "NotFound",
    "api_blueprint",
    "create_app",
    "state_of",
]
