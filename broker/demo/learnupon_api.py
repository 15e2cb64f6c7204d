"""A fake of the LearnUpon REST API v1 (users, groups, memberships, enrollments, courses, learning paths) for
tests and the demo.

`create_app(state)` serves a `LearnUponState` (see `learnupon_state`) as a WSGI app at `/api/v1/` (and at
`/<portal>/api/v1/` when several portals share one server). It behaves like the real API where public material
says how (docs/learnupon-api.md): HTTP Basic auth, `{"User": {...}}` request wrappers, `{"user": [...]}` lists,
pages of 500 with `LU-Has-Next-Page`, `X-LU-Rate-Limit-Remaining-*` headers and 429 + Retry-After over the
per-minute limit, unique emails and group titles. It is STRICT like a validating server: a body without the
documented wrapper, a field or query parameter the documentation does not list, answers 400 — so a call shape
nobody documents fails a test instead of passing silently. Faults (429/5xx, slow answers, search lag) can be
injected at runtime.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from broker.demo.learnupon_state import FakeApiError, LearnUponState, LoggedRequest, NotFound

_STATUS_MESSAGES = {
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

# The documented parameters of each write (docs.learnupon.com/api, "Mandatory" and "Optional" tables).
_MANAGER_AND_INSTRUCTOR_FLAGS = {
    "can_enroll", "can_unenroll_users", "can_mark_complete", "can_move_groups", "can_act_as_instructor",
    "can_manage_trainings", "can_manage_sessions", "tutor_can_edit_their_courses", "tutor_can_create_courses",
}  # fmt: skip
USER_CREATE_FIELDS = frozenset(
    {"email", "username", "password", "last_name", "first_name", "language", "CustomData", "account_expires",
     "enabled", "user_type", "timezone_id", "change_password_on_first_login", "membership_type",
     "sf_contact_id", "sf_user_id"} | _MANAGER_AND_INSTRUCTOR_FLAGS
)  # fmt: skip
USER_UPDATE_FIELDS = USER_CREATE_FIELDS | {"new_email", "new_username"}
GROUP_FIELDS = frozenset({"title", "description", "sso_sync"})
MEMBERSHIP_FIELDS = frozenset({"group_id", "user_id", "process_enrollments"})
ENROLLMENT_FIELDS = frozenset(
    {"email", "username", "user_id", "course_id", "course_name", "re_enroll_if_completed", "due_date",
     "expires_at"}
)  # fmt: skip
LP_ENROLLMENT_FIELDS = frozenset(
    {"user_id", "email", "username", "lp_id", "lp_name", "re_enroll_if_completed"}
)


def _error(status: int, message: str) -> Response:
    response = jsonify({"message": message, "response_code": status})
    response.status_code = status
    return response


def _state() -> LearnUponState:
    return g.learnupon_state


def _body(wrapper: str, allowed: frozenset[str]) -> dict[str, Any]:
    """The object inside `{"<wrapper>": {...}}`, checked like a validating server: the documented wrapper
    (exact spelling) and nothing else at the top, and only documented fields inside."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get(wrapper), dict):
        raise FakeApiError(400, f"Expected a JSON object wrapped in {wrapper!r}")
    if set(body) != {wrapper}:
        raise FakeApiError(400, f"Unknown parameter(s): {', '.join(sorted(set(body) - {wrapper}))}")
    fields = dict(body[wrapper])
    unknown = set(fields) - allowed
    if unknown:
        raise FakeApiError(400, f"Unknown attribute(s) for {wrapper}: {', '.join(sorted(unknown))}")
    return fields


def _no_body(allowed: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A request that takes no body (or only the documented top-level flags in `allowed`)."""
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - allowed:
        raise FakeApiError(400, "Unexpected request body")
    return body


def _query(*allowed: str) -> None:
    """Refuse query parameters the documentation does not list for this call (`page` is always allowed)."""
    unknown = set(request.args) - set(allowed) - {"page"}
    if unknown:
        raise FakeApiError(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FakeApiError(400, f"{name} must be an integer") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _user_from(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The user an enrolment names by `user_id`, `email` or `username`."""
    state = _state()
    if fields.get("user_id") is not None:
        user = state.get_user(_as_int(fields["user_id"], "user_id"))
    elif fields.get("email"):
        user = state.find_user(str(fields["email"]))
    else:
        raise FakeApiError(400, "user_id, email or username is required")
    if user is None:
        raise NotFound("User not found")
    return user


def _same_identity(state: LearnUponState, user_id: int, fields: Mapping[str, Any]) -> None:
    """An update by numeric id may repeat the user's own email (the documented example does); changing it that
    way, or `new_email` by id, is not documented (only `users/0` with the current email and `new_email` is), so
    the strict fake refuses both rather than guess what LearnUpon does."""
    if "new_email" in fields or "new_username" in fields:
        raise FakeApiError(400, "new_email/new_username are documented with user id 0 and the current email")
    user = state.get_user(user_id)
    if user is None:
        raise NotFound("User not found")
    email = fields.get("email")
    if email is not None and str(email).strip().lower() != str(user["email"]).lower():
        raise FakeApiError(400, "To change an email, PUT users/0 with the current email and new_email")


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
        _query("version_id")
        return _paged("user", sorted(_state().users(), key=lambda u: u["id"]))

    @bp.get("/users/search")
    def search_users():
        _query("email", "username", "version_id", "login_enabled")
        email = request.args.get("email", "")
        state = _state()
        user = state.find_user(email) if email else None
        if state._take_hidden_search() or user is None:
            return _error(404, "User not found")
        return jsonify({"user": [user]})

    @bp.get("/users/<int:user_id>")
    def get_user(user_id: int):
        _query()
        user = _state().get_user(user_id)
        if user is None:
            return _error(404, "User not found")
        return jsonify({"user": [user]})

    @bp.post("/users")
    def create_user():
        fields = _body("User", USER_CREATE_FIELDS)
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
        fields = _body("User", USER_UPDATE_FIELDS)
        state = _state()
        if user_id == 0:  # documented: id 0, the user's current email, and `new_email` to change it
            user = state.find_user(fields.get("email", ""))
            if user is None:
                raise NotFound("User not found")
            user_id = user["id"]
        else:
            _same_identity(state, user_id, fields)
        if "enabled" in fields:
            fields["enabled"] = _as_bool(fields["enabled"])
        user = state.update_user(user_id, **fields)
        return jsonify({"id": user["id"]})

    @bp.delete("/users/<int:user_id>")
    def delete_user(user_id: int):
        _no_body()
        _state().delete_user(user_id)
        return jsonify({})

    @bp.get("/groups")
    def list_groups():
        _query("title")
        title = request.args.get("title")
        return _paged("groups", sorted(_state().groups(title), key=lambda gr: gr["id"]))

    @bp.post("/groups")
    def create_group():
        fields = _body("Group", GROUP_FIELDS)
        group = _state().create_group(
            str(fields.get("title", "")),
            str(fields.get("description") or ""),
            _as_bool(fields.get("sso_sync", False)),
        )
        return jsonify({"id": group["id"]}), 201

    @bp.get("/group_memberships")
    def list_memberships():
        _query("user_id", "group_id", "version_id")
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
        fields = _body("GroupMembership", MEMBERSHIP_FIELDS)
        rec = _state().add_membership(
            _as_int(fields.get("group_id"), "group_id"), _as_int(fields.get("user_id"), "user_id")
        )
        return jsonify({"id": rec["id"]}), 201

    @bp.delete("/group_memberships/<int:membership_id>")
    def remove_membership(membership_id: int):
        state = _state()
        if membership_id == 0:  # documented: id 0 plus {"GroupMembership": {group_id, user_id}}
            fields = _body("GroupMembership", MEMBERSHIP_FIELDS | {"process_unenrollments"})
            state.remove_membership_of(
                _as_int(fields.get("group_id"), "group_id"), _as_int(fields.get("user_id"), "user_id")
            )
        else:
            _no_body(frozenset({"process_unenrollments"}))
            state.remove_membership(membership_id)
        return jsonify({})

    @bp.post("/enrollments")
    def enroll():
        fields = _body("Enrollment", ENROLLMENT_FIELDS)
        state = _state()
        user = _user_from(fields)
        if fields.get("course_id") is not None:
            course_id = _as_int(fields["course_id"], "course_id")
        elif fields.get("course_name"):
            course_id = state.course_id_named(str(fields["course_name"]))
        else:
            raise FakeApiError(400, "course_id or course_name is required")
        rec = state.enroll(user["id"], course_id)
        return jsonify({"id": rec["id"], "created_at": rec["created_at"], "user_id": rec["user_id"]}), 201

    @bp.get("/enrollments/search")
    def search_enrollments():
        _query("user_id", "email", "username", "course_name", "course_id", "date_from", "date_to")
        state = _state()
        if "user_id" in request.args:
            user_id = _as_int(request.args["user_id"], "user_id")
        else:
            user = state.find_user(request.args.get("email", ""))
            if user is None:
                return _error(404, "User not found")
            user_id = user["id"]
        return _paged("enrollments", state.enrollments_of(user_id))

    @bp.delete("/enrollments/<int:enrollment_id>")
    def unenroll(enrollment_id: int):
        _no_body(frozenset({"remove_from_history"}))
        _state().remove_enrollment(enrollment_id)
        return jsonify({})

    @bp.get("/courses")
    def list_courses():
        _query("name", "course_id", "include_all_versions", "include_draft", "include_licensed_courses")
        courses = _state().courses(request.args.get("name"))
        if "course_id" in request.args:
            wanted = _as_int(request.args["course_id"], "course_id")
            courses = [c for c in courses if c["id"] == wanted]
        return _paged("courses", courses)

    @bp.get("/learning_paths")
    def list_learning_paths():
        _query("name", "id", "include_draft", "include_courses")
        paths = _state().learning_paths(request.args.get("name"))
        if "id" in request.args:
            paths = [p for p in paths if p["id"] == _as_int(request.args["id"], "id")]
        return _paged("learning_paths", paths)

    @bp.post("/learning_path_enrollments")
    def enroll_learning_path():
        fields = _body("Enrollment", LP_ENROLLMENT_FIELDS)
        state = _state()
        user = _user_from(fields)
        if fields.get("lp_id") is not None:
            lp_id = _as_int(fields["lp_id"], "lp_id")
        elif fields.get("lp_name"):
            lp_id = state.learning_path_id_named(str(fields["lp_name"]))
        else:
            raise FakeApiError(400, "lp_id or lp_name is required")
        rec = state.enroll_learning_path(user["id"], lp_id)
        return jsonify({"id": rec["id"]}), 201

    @bp.get("/learning_path_enrollments/search")
    def search_learning_path_enrollments():
        _query("user_id", "email", "username", "lp_id", "lp_name")
        user_id = _as_int(request.args.get("user_id"), "user_id")
        return _paged("learning_path_enrollments", _state().learning_path_enrollments_of(user_id))

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
    "api_blueprint",
    "create_app",
    "state_of",
]
