"""A fake of the LearnUpon REST API v1 (users, groups, memberships, enrollments) for tests and the demo.

`create_app(state)` serves a `LearnUponState` (see `learnupon_state`) as a WSGI app at `/api/v1/` (and at
`/<portal>/api/v1/` when several portals share one server). It behaves like the real API where public material
says how: HTTP Basic auth, `{"User": {...}}` request wrappers, `{"user": [...]}` lists, pages of 500 with
`LU-Has-Next-Page`, `X-LU-Rate-Limit-Remaining-*` headers and 429 over the per-minute limit, unique emails and
group titles. Faults (429/5xx, slow answers, search lag) can be injected at runtime.
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
    "api_blueprint",
    "create_app",
    "state_of",
]
