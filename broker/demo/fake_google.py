"""A fake Google OAuth token endpoint and Admin SDK Directory API (users.list, groups.list, members.list) with
the documented shapes, for tests and the demo.

The token endpoint takes the service-account JWT bearer grant and verifies the assertion's RS256 signature with
the service account's public key, its audience, issuer, subject (the admin acted as) and scopes; the API takes
the access tokens it issued. Listings page with `maxResults` / `pageToken` / `nextPageToken`; deleted users
show only with `showDeleted=true`. Faults (`fail_next`) answer 429 or 5xx with Google's error object.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from typing import Any

import jwt
from flask import Flask, Response, jsonify, request

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
USERS_PAGE_MAX = 500
GROUPS_PAGE_MAX = 200
MEMBERS_PAGE_MAX = 200
ENDPOINTS = ("token", "users", "groups", "members")
_REASONS = {429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded", "Quota exceeded"),
            500: ("INTERNAL", "backendError", "Backend Error"),
            503: ("UNAVAILABLE", "backendError", "The service is currently unavailable.")}  # fmt: skip


class FakeGoogleControl:
    """Counts requests per endpoint, injects failures, and can withdraw domain-wide delegation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._failures: list[list[Any]] = []
        self.tokens: set[str] = set()
        self.delegation_revoked = False

    def fail_next(self, n: int, status: int = 429, *, endpoint: str | None = None) -> None:
        with self._lock:
            self._failures.append([n, status, endpoint])

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self.counts.clear()
            self.tokens.clear()
            self.delegation_revoked = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _hit(self, endpoint: str) -> int | None:
        with self._lock:
            self.counts[endpoint] += 1
            for failure in self._failures:
                if failure[2] in (None, endpoint):
                    failure[0] -= 1
                    if failure[0] <= 0:
                        self._failures.remove(failure)
                    return int(failure[1])
            return None


def google_user(uid: str, email: str, first: str, last: str, *, suspended: bool = False, archived: bool = False,
                last_login: str | None = None, aliases: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A user resource as users.list returns it with projection=basic."""
    return {
        "kind": "admin#directory#user",
        "id": uid,
        "etag": f'"{secrets.token_hex(8)}"',
        "primaryEmail": email,
        "name": {"givenName": first, "familyName": last, "fullName": f"{first} {last}"},
        "isAdmin": False,
        "isDelegatedAdmin": False,
        # Google's "never" is the epoch
        "lastLoginTime": last_login or "1970-01-01T00:00:00.000Z",
        "creationTime": "2025-02-01T09:00:00.000Z",
        "agreedToTerms": True,
        "suspended": suspended,
        **({"suspensionReason": "ADMIN"} if suspended else {}),
        "archived": archived,
        "changePasswordAtNextLogin": False,
        "ipWhitelisted": False,
        "emails": [{"address": email, "primary": True}],
        **({"aliases": aliases} if aliases else {}),
        "customerId": "C01demo00",
        "orgUnitPath": "/",
        "isMailboxSetup": True,
        "includeInGlobalAddressList": True,
    }


def create_fake_google(
    *,
    client_email: str,
    public_key_pem: bytes,
    admin_email: str,
    token_url: str,
    users: list[dict[str, Any]],
    groups: dict[str, tuple[str, str, list[str]]],
    deleted_users: list[dict[str, Any]] | None = None,
    control: FakeGoogleControl | None = None,
) -> Flask:
    """`groups` maps a group id to (name, email, member user ids). `token_url` is the URL the assertion's
    audience must name (the service account key file's token_uri)."""
    control = control or FakeGoogleControl()
    app = Flask(__name__)
    app.extensions["fake_google"] = control
    gone = deleted_users or []

    @app.before_request
    def _gate() -> tuple[Response, int] | None:
        endpoint = request.endpoint
        if endpoint not in ENDPOINTS:
            return None
        status = control._hit(endpoint)
        if status is not None:
            code, reason, message = _REASONS.get(status, ("UNKNOWN", "unknown", "Fault injected"))
            return _error(status, message, reason, code)
        if endpoint == "token":
            return None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in control.tokens:
            return _error(
                401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"
            )
        return None

    @app.post("/token", endpoint="token")
    def token() -> Response | tuple[Response, int]:
        if request.form.get("grant_type") != JWT_BEARER:
            return _token_error("unsupported_grant_type", "Invalid grant_type.")
        try:
            claims = jwt.decode(request.form.get("assertion", ""), public_key_pem, algorithms=["RS256"],
                                audience=token_url, issuer=client_email, options={"require": ["exp", "iat"]})  # fmt: skip
        except jwt.PyJWTError as exc:
            return _token_error("invalid_grant", f"Invalid JWT Signature or claims ({type(exc).__name__}).")
        if claims["exp"] - claims["iat"] > 3600:
            return _token_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)."
            )
        scopes = set(str(claims.get("scope", "")).split())
        if (
            control.delegation_revoked
            or claims.get("sub") != admin_email
            or not scopes <= {USER_SCOPE, GROUP_SCOPE}
        ):
            return _token_error(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized "
                "for any of the scopes requested.",
                401,
            )
        access = "ya29.fake-" + secrets.token_urlsafe(24)
        with control._lock:
            control.tokens.add(access)
        return jsonify({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    @app.get("/admin/directory/v1/users", endpoint="users")
    def users_list() -> Response | tuple[Response, int]:
        if not request.args.get("customer") and not request.args.get("domain"):
            return _error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT")
        listed = gone if request.args.get("showDeleted") == "true" else users
        return _page(listed, "users", "admin#directory#users", USERS_PAGE_MAX)

    @app.get("/admin/directory/v1/groups", endpoint="groups")
    def groups_list() -> Response | tuple[Response, int]:
        if not request.args.get("customer") and not request.args.get("domain"):
            return _error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT")
        found = [{"kind": "admin#directory#group", "id": gid, "etag": '"g"', "email": email, "name": name,
                  "directMembersCount": str(len(members)), "description": "", "adminCreated": True}
                 for gid, (name, email, members) in groups.items()]  # fmt: skip
        return _page(found, "groups", "admin#directory#groups", GROUPS_PAGE_MAX)

    @app.get("/admin/directory/v1/groups/<group_key>/members", endpoint="members")
    def members_list(group_key: str) -> Response | tuple[Response, int]:
        found = next(((gid, g) for gid, g in groups.items() if group_key in (gid, g[1])), None)
        if found is None:
            return _error(404, "Resource Not Found: groupKey", "notFound", "NOT_FOUND")
        ids = set(found[1][2])
        members = [{"kind": "admin#directory#member", "etag": '"m"', "id": u["id"], "email": u["primaryEmail"],
                    "role": "MEMBER", "type": "USER", "status": "ACTIVE"} for u in users if u["id"] in ids]  # fmt: skip
        return _page(members, "members", "admin#directory#members", MEMBERS_PAGE_MAX)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _unknown(exc: Exception) -> tuple[Response, int]:
        return _error(404, "Not Found", "notFound", "NOT_FOUND")

    return app


def fake_google_control(app: Flask) -> FakeGoogleControl:
    return app.extensions["fake_google"]


def _page(items: list[dict[str, Any]], key: str, kind: str, page_max: int) -> Response | tuple[Response, int]:
    size_text = request.args.get("maxResults", str(min(100, page_max)))
    if not size_text.isdigit() or not 1 <= int(size_text) <= page_max:
        return _error(400, f"Invalid value '{size_text}'. Values must be within the range: [1, {page_max}]",
                      "invalid", "INVALID_ARGUMENT")  # fmt: skip
    size = int(size_text)
    token = request.args.get("pageToken", "")
    offset = int(token[1:]) if token.startswith("p") and token[1:].isdigit() else 0
    body: dict[str, Any] = {"kind": kind, "etag": '"list"'}
    chunk = items[offset : offset + size]
    if chunk:
        body[key] = chunk  # Google leaves the list out when it is empty
    if offset + size < len(items):
        body["nextPageToken"] = f"p{offset + size}"
    return jsonify(body)


def _error(status: int, message: str, reason: str, code: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": status, "message": message, "status": code,
                              "errors": [{"message": message, "domain": "global", "reason": reason}]}}), status  # fmt: skip


def _token_error(error: str, description: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": error, "error_description": description}), status
