"""A fake Okta Users and Groups API (`/api/v1/users`, `/api/v1/groups`, `/api/v1/groups/{id}/users`) with the
documented shapes, for tests and the demo: SSWS API tokens, cursor paging through `Link: <…>; rel="next"`,
DEPROVISIONED users left out of the default listing (only `filter=status eq "DEPROVISIONED"` shows them),
Okta's error objects, and 429 with the `X-Rate-Limit-*` headers (Okta sends no Retry-After).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request

USERS_PAGE_MAX = 200  # Okta: limit for /users (default and maximum 200)
GROUPS_PAGE_MAX = 10_000
MEMBERS_PAGE_MAX = 1000
STATUSES = ("STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED",
            "DEPROVISIONED")  # fmt: skip
ENDPOINTS = ("users", "groups", "groupUsers")
_FAULTS = {401: ("E0000011", "Invalid token provided"),
           403: ("E0000006", "You do not have permission to perform the requested action")}  # fmt: skip


class FakeOktaControl:
    """Counts requests per endpoint and injects failures (`fail_next`). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._failures: list[list[Any]] = []  # [remaining, status, endpoint or None, reset_in]

    def fail_next(self, n: int, status: int = 429, *, endpoint: str | None = None, reset_in: int = 1) -> None:
        """The next `n` requests (to `endpoint`, or any) answer `status`; a 429's X-Rate-Limit-Reset is
        `reset_in` seconds ahead."""
        with self._lock:
            self._failures.append([n, status, endpoint, reset_in])

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self.counts.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _hit(self, endpoint: str) -> tuple[int, int] | None:
        with self._lock:
            self.counts[endpoint] += 1
            for failure in self._failures:
                if failure[2] in (None, endpoint):
                    failure[0] -= 1
                    if failure[0] <= 0:
                        self._failures.remove(failure)
                    return failure[1], failure[3]
            return None


def okta_user(uid: str, email: str, first: str, last: str, status: str = "ACTIVE",
              last_login: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A user object as the Users API returns it (the fields the broker reads, and the usual others)."""
    if status not in STATUSES:
        raise ValueError(f"unknown Okta status {status!r}")
    return {
        "id": uid,
        "status": status,
        "created": "2025-01-15T09:00:00.000Z",
        "activated": "2025-01-15T09:05:00.000Z",
        "statusChanged": "2025-01-15T09:05:00.000Z",
        "lastLogin": last_login,
        "lastUpdated": "2025-06-01T12:00:00.000Z",
        "passwordChanged": "2025-01-15T09:05:00.000Z",
        "type": {"id": "oty1demo0default"},
        "profile": {
            "firstName": first,
            "lastName": last,
            "mobilePhone": None,
            "secondEmail": None,
            "login": email,
            "email": email,
        },  # fmt: skip
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"/api/v1/users/{uid}"}},
    }


def create_fake_okta(
    api_token: str,
    users: list[dict[str, Any]],
    groups: dict[str, tuple[str, list[str]]],
    *,
    control: FakeOktaControl | None = None,
) -> Flask:
    """`users` as made by `okta_user`; `groups` maps a group id to (name, member user ids)."""
    control = control or FakeOktaControl()
    app = Flask(__name__)
    app.extensions["fake_okta"] = control

    @app.before_request
    def _gate() -> Response | tuple[Response, int] | None:
        endpoint = request.endpoint
        if endpoint not in ENDPOINTS:
            return None
        failure = control._hit(endpoint)
        if failure is not None:
            status, reset_in = failure
            if status == 429:
                resp, code = _error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
                resp.headers.update(_rate_headers(remaining=0, reset_in=reset_in))
                return resp, code
            error_code, summary = _FAULTS.get(status, ("E0000009", "Internal Server Error"))
            return _error(status, error_code, summary)
        header = request.headers.get("Authorization", "")
        if not header.startswith("SSWS ") or not hmac.compare_digest(header[5:].encode(), api_token.encode()):
            return _error(401, "E0000011", "Invalid token provided")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        if response.status_code != 429:
            response.headers.update(_rate_headers(remaining=599, reset_in=60))
        return response

    @app.get("/api/v1/users", endpoint="users")
    def list_users() -> Response | tuple[Response, int]:
        expression = request.args.get("filter")
        if expression is None:
            found = [u for u in users if u["status"] != "DEPROVISIONED"]
        else:
            match = re.fullmatch(r'status eq "([A-Z_]+)"', expression.strip())
            if match is None or match[1] not in STATUSES:
                return _error(400, "E0000031", "Invalid search criteria.")
            found = [u for u in users if u["status"] == match[1]]
        return _cursor_page(found, USERS_PAGE_MAX)

    @app.get("/api/v1/groups", endpoint="groups")
    def list_groups() -> Response | tuple[Response, int]:
        q = (request.args.get("q") or "").lower()
        found = [_group(gid, name) for gid, (name, _) in groups.items() if name.lower().startswith(q)]
        return _cursor_page(found, GROUPS_PAGE_MAX)

    @app.get("/api/v1/groups/<group_id>/users", endpoint="groupUsers")
    def group_users(group_id: str) -> Response | tuple[Response, int]:
        if group_id not in groups:
            return _error(404, "E0000007", f"Not found: Resource not found: {group_id} (UserGroup)")
        ids = set(groups[group_id][1])
        return _cursor_page([u for u in users if u["id"] in ids], MEMBERS_PAGE_MAX)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _unknown(exc: Exception) -> tuple[Response, int]:
        return _error(404, "E0000022", "The endpoint does not support the provided HTTP method")

    return app


def fake_okta_control(app: Flask) -> FakeOktaControl:
    return app.extensions["fake_okta"]


def _group(gid: str, name: str) -> dict[str, Any]:
    return {
        "id": gid,
        "created": "2025-01-10T08:00:00.000Z",
        "lastUpdated": "2025-01-10T08:00:00.000Z",
        "lastMembershipUpdated": "2025-06-01T12:00:00.000Z",
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": name, "description": None},
        "_links": {"users": {"href": f"/api/v1/groups/{gid}/users"}},
    }


def _cursor_page(items: list[dict[str, Any]], page_max: int) -> Response | tuple[Response, int]:
    """One page; `after` is an opaque cursor (here: the offset), and `Link` headers name self and next."""
    limit_text = request.args.get("limit", str(page_max))
    if not limit_text.isdigit() or int(limit_text) < 1:
        return _error(400, "E0000001", "Api validation failed: limit")
    limit = min(int(limit_text), page_max)  # Okta quietly cuts a larger limit to the maximum
    offset = _offset(request.args.get("after"))
    response = jsonify(items[offset : offset + limit])
    links = [f'<{request.base_url}?{urlencode(request.args)}>; rel="self"']
    if offset + limit < len(items):
        args = {k: v for k, v in request.args.items() if k != "after"}
        args["after"] = base64.urlsafe_b64encode(f"{offset + limit}".encode()).decode().rstrip("=")
        links.append(f'<{request.base_url}?{urlencode(args)}>; rel="next"')
    response.headers["Link"] = ", ".join(links)
    return response


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:
        return 0


def _rate_headers(*, remaining: int, reset_in: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": "600",
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(int(time.time()) + reset_in),
    }


def _error(status: int, code: str, summary: str) -> tuple[Response, int]:
    return jsonify(
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(16),
            "errorCauses": [],
        }
    ), status
