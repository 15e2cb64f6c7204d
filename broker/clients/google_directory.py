"""Google Workspace as a directory for access reviews, read through the Admin SDK Directory API.

Authentication: a service account with domain-wide delegation signs a JWT (RS256, PyJWT) naming the admin it
acts as and the read-only scopes, and trades it at the key file's `token_uri` for an access token.
Cost: one users.list page per 500 users, one for deleted users, one groups.list page per 200 groups, one
members.list page per 200 members of each routing group (derived membership included).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from broker.clients.directory import (
    DirectorySnapshot,
    DirectoryUnavailable,
    DirectoryUser,
    lower_emails,
    parse_time,
)
from broker.clients.http import Budget, GiveUp, RetryPolicy, json_or_none, pooled_session, retry_after_seconds
from broker.rules.names import matches_any

log = logging.getLogger(__name__)

SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
)
USERS_PAGE = 500
GROUPS_PAGE = 200
MEMBERS_PAGE = 200
MAX_PAGES = 100_000
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class GoogleDirectory:
    kind = "google"

    def __init__(
        self,
        *,
        client_email: str,
        private_key: str,
        token_uri: str,
        admin_email: str,
        customer: str = "my_customer",
        api_base: str = "https://admin.googleapis.com",
        private_key_id: str | None = None,
        budget: float = 900.0,
        timeout: tuple[float, float] = (3.05, 30.0),
        retry: RetryPolicy = RetryPolicy(max_retries=6, backoff=0.5, max_retry_after=65.0),  # noqa: B008
        session: requests.Session | None = None,
    ):
        _check_url(token_uri, "token_uri")
        self.client_email = client_email
        self._private_key = private_key
        self._key_id = private_key_id
        self.token_uri = token_uri
        self.admin_email = admin_email
        self.customer = customer
        self.api_base = api_base.rstrip("/")
        self.budget = budget
        self.timeout = timeout
        self.retry = retry
        self._session = session or pooled_session(4, "learnupon-saml-broker (access review)")
        self._token: tuple[str, float] | None = None
        self.requests = 0

    @classmethod
    def from_key_file(cls, path: str | Path, **kwargs: Any) -> GoogleDirectory:
        """From a service account JSON key file (as downloaded from the Google Cloud console)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("type") != "service_account":
            raise ValueError("not a service account key file (type is not service_account)")
        missing = [k for k in ("client_email", "private_key", "token_uri") if not data.get(k)]
        if missing:
            raise ValueError(f"the key file lacks {', '.join(missing)}")
        return cls(client_email=data["client_email"], private_key=data["private_key"],
                   token_uri=data["token_uri"], private_key_id=data.get("private_key_id"), **kwargs)  # fmt: skip

    def snapshot(self, group_names: Iterable[str]) -> DirectorySnapshot:
        patterns = list(group_names)
        call = Budget.start(self.budget)
        before = self.requests
        snap = DirectorySnapshot(kind=self.kind, sign_ins_known=True)
        try:
            base = (
                f"/admin/directory/v1/users?customer={self.customer}&maxResults={USERS_PAGE}&projection=basic"
            )
            for obj in self._all(base, "users", call):
                snap.users.append(_user(obj, deleted=False))
            for obj in self._all(base + "&showDeleted=true", "users", call):
                snap.users.append(_user(obj, deleted=True))
            if patterns:
                groups_url = f"/admin/directory/v1/groups?customer={self.customer}&maxResults={GROUPS_PAGE}"
                for group in self._all(groups_url, "groups", call):
                    names = [v for v in (group.get("name"), group.get("email")) if isinstance(v, str)]
                    if isinstance(group.get("id"), str) and names and matches_any(names, patterns):
                        snap.routing_groups[group["id"]] = names[0]
                for gid in snap.routing_groups:
                    url = (f"/admin/directory/v1/groups/{gid}/members?maxResults={MEMBERS_PAGE}"
                           "&includeDerivedMembership=true")  # fmt: skip
                    for member in self._all(url, "members", call):
                        if member.get("type") == "USER" and isinstance(member.get("id"), str):
                            snap.members.add(member["id"])
        finally:
            snap.requests = self.requests - before
        snap.users = [u for u in snap.users if u.emails]
        return snap

    # ---- HTTP ------------------------------------------------------------------------------------------------

    def _all(self, path: str, key: str, call: Budget) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page_token = ""
        for _ in range(MAX_PAGES):
            url = self.api_base + path + (f"&pageToken={page_token}" if page_token else "")
            body = self._get(url, call)
            listed = body.get(key, [])  # Google leaves the list out when it is empty
            if not isinstance(listed, list):
                raise DirectoryUnavailable(f"google: {path.split('?')[0]}: '{key}' is not a list")
            items.extend(obj for obj in listed if isinstance(obj, dict))
            page_token = body.get("nextPageToken") or ""
            if not page_token:
                return items
        raise DirectoryUnavailable(f"google: more than {MAX_PAGES} pages of {path.split('?')[0]}")

    def _get(self, url: str, call: Budget) -> dict[str, Any]:
        what = url.removeprefix(self.api_base).split("?")[0]
        failures = 0
        renewed = False
        while True:
            timeout = call.cut(self.timeout)
            if timeout is None:
                raise DirectoryUnavailable(f"google: {what}: no answer within the {call.seconds:g} s budget")
            headers = {"Authorization": f"Bearer {self._access_token(call)}", "Accept": "application/json"}
            wait_hint: float | None = None
            try:
                self.requests += 1
                response = self._session.get(url, headers=headers, timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                problem = f"request failed ({type(exc).__name__})"
            else:
                body = json_or_none(response)
                if response.status_code == 200 and isinstance(body, dict):
                    return body
                reason, message = _error_of(body)
                if response.status_code == 401 and not renewed:
                    self._token, renewed = None, True  # a revoked token: fetch a new one once
                    continue
                throttled = response.status_code == 429 or (
                    response.status_code == 403 and reason in _RATE_REASONS
                )
                if not throttled and response.status_code < 500:
                    raise DirectoryUnavailable(
                        f"google: {what}: HTTP {response.status_code} {reason}: {message}; the service account "
                        f"needs domain-wide delegation for {', '.join(SCOPES)} acting as {self.admin_email}"
                    )
                problem = f"HTTP {response.status_code} {reason}"
                wait_hint = retry_after_seconds(response.headers.get("Retry-After"))
            failures += 1
            self._wait(what, problem, failures, wait_hint, call)

    def _wait(self, what: str, problem: str, failures: int, hint: float | None, call: Budget) -> None:
        try:
            wait = self.retry.wait(failures, hint, call)
        except GiveUp as exc:
            raise DirectoryUnavailable(f"google: {what}: {problem}; {exc}") from None
        log.info("google %s: %s; retry %d in %.2f s", what, problem, failures, wait)
        time.sleep(wait)

    def _access_token(self, call: Budget) -> str:
        if self._token is not None and time.monotonic() < self._token[1]:
            return self._token[0]
        now = int(time.time())
        claims = {"iss": self.client_email, "sub": self.admin_email, "scope": " ".join(SCOPES),
                  "aud": self.token_uri, "iat": now, "exp": now + 3600}  # fmt: skip
        try:
            assertion = jwt.encode(claims, self._private_key, algorithm="RS256",
                                   headers={"kid": self._key_id} if self._key_id else None)  # fmt: skip
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise DirectoryUnavailable(
                f"google: the service account's private key is unusable ({exc})"
            ) from None
        failures = 0
        while True:
            timeout = call.cut(self.timeout)
            if timeout is None:
                raise DirectoryUnavailable(f"google: token: no answer within the {call.seconds:g} s budget")
            try:
                self.requests += 1
                response = self._session.post(
                    self.token_uri,
                    data={
                        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                        "assertion": assertion,
                    },
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                problem = f"request failed ({type(exc).__name__})"
            else:
                body = json_or_none(response)
                if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
                    lifetime = float(body.get("expires_in", 3600))
                    self._token = (
                        str(body["access_token"]),
                        time.monotonic() + lifetime - min(300, lifetime / 2),
                    )
                    return self._token[0]
                if response.status_code < 500 and response.status_code != 429:
                    err = body if isinstance(body, dict) else {}
                    raise DirectoryUnavailable(
                        f"google: token: HTTP {response.status_code} {err.get('error', '')}: "
                        f"{str(err.get('error_description', ''))[:200]} (service account {self.client_email}, "
                        f"acting as {self.admin_email})"
                    )
                problem = f"HTTP {response.status_code}"
            failures += 1
            self._wait("token", problem, failures, None, call)


def _user(obj: dict[str, Any], *, deleted: bool) -> DirectoryUser:
    emails = lower_emails(obj.get("primaryEmail"), obj.get("aliases") or [])
    uid = str(obj.get("id") or "")
    if deleted:
        return DirectoryUser(uid, emails, "deleted", "deleted")
    last = parse_time(obj.get("lastLoginTime"))
    if last is not None and last.year <= 1970:
        last = None  # Google's "never signed in"
    if obj.get("suspended") is True:
        reason = obj.get("suspensionReason")
        return DirectoryUser(uid, emails, "suspended", f"suspended{f' ({reason})' if reason else ''}", last)
    if obj.get("archived") is True:
        return DirectoryUser(uid, emails, "archived", "archived", last)
    return DirectoryUser(uid, emails, "active", "active", last)


def _error_of(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        errors = error.get("errors")
        reason = (
            errors[0].get("reason")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict)
            else None
        )
        return str(reason or error.get("status") or "error"), str(error.get("message") or "")[:200]
    return "error", "no Google error object"


def _check_url(url: str, what: str) -> None:
    # the signed assertion travels there: https, or plain http to this machine only (demo, tests)
    parts = urlsplit(url)
    if not parts.hostname or not (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    ):
        raise ValueError(f"{what} must be an https URL (plain http only to 127.0.0.1 / localhost)")
