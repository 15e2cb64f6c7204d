"""HTTP client of the LearnUpon REST API v1: pooled, retrying, rate-limit aware, bounded by a time budget.

Only this module speaks HTTP to LearnUpon, and only with call shapes LearnUpon documents or that code talking to
real portals uses (docs/learnupon-api.md lists each call and its source). Errors come out as `LearnUponError`
subclasses whose text never contains the API key pair or a generated password. What an error *means* is never
guessed from the English of its message: callers re-read LearnUpon instead.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import logging
import math
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from broker.clients.guard import ServiceGuard, ServiceRefused
from broker.clients.http import (
    Budget,
    GiveUp,
    RetryPolicy,
    json_or_none,
    pooled_session,
    retry_after_seconds,
    scrub,
    send_within,
)
from broker.errors import BrokerError

log = logging.getLogger(__name__)

_RETRY_STATUSES = {429, 500, 502, 503, 504}


class LearnUponError(BrokerError):
    """A LearnUpon API call failed. `status` is the HTTP status (None without an answer), `api_message`
    what the API said (scrubbed of secrets)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_message: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.api_message = api_message
        self.method = method
        self.path = path


class LearnUponUnavailable(LearnUponError):
    """No usable answer in time: connection errors, timeouts, 5xx or 429 after retries, budget spent.
    `refused`: not even tried (bulkhead full, circuit open). `retry_after`: the last Retry-After LearnUpon
    sent, in seconds, if any."""

    refused = False
    retry_after: float | None = None


class LearnUponMaybeDone(LearnUponUnavailable):
    """A POST that creates something got no usable answer after it was sent (read timeout, reset, 5xx): it
    may have been done. Not retried blindly; the caller reads first (search by e-mail or title)."""


class LearnUponAuthError(LearnUponError):
    """401/403: the API key pair is wrong, revoked, or lacks the permission."""


class LearnUponNotFound(LearnUponError):
    """404 for something that should exist (a user search answering 404 is not an error: it is None)."""


class LearnUponConflict(LearnUponError):
    """409. (A 400 or 422 may mean the same, but LearnUpon does not document which: callers re-read.)"""


class LearnUponRejected(LearnUponError):
    """Another 4xx: LearnUpon refused the request (invalid, or in conflict with what it holds)."""


@dataclass
class CallScope(Budget):
    """A budget for a series of calls (one login's provisioning). `requests` counts HTTP requests made."""

    requests: int = 0


_scope: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar(
    "learnupon_call_scope", default=None
)


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


class LearnUponClient:
    """One portal's API. Thread-safe; share one instance per portal so connections are pooled.

    `timeout` is (connect, read) seconds per attempt. Failed attempts (connection errors, timeouts, 429,
    5xx) are retried up to `max_retries` times with exponential backoff and jitter; a `Retry-After` up to
    `max_retry_after` seconds is honoured: 429 with `Retry-After` is the signal relied on. Only if answers
    carry `X-LU-Rate-Limit-Remaining-Minute` (documented, but not seen in code talking to real portals) and it
    falls to `low_water` or below, each request first sleeps up to `slowdown` seconds to spread the rest of the
    minute's allowance.
    Inside `with client.budget(seconds):` every wait and timeout is cut to the time left, and a call that
    cannot finish in time raises `LearnUponUnavailable`.

    `counters` counts attempts by outcome: ok, http_404 (an expected 404), rate_limited, server_error,
    timeout, connection_error, auth_error, client_error, error; and events: retried, slowed, budget_exhausted.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        max_retry_after: float = 10.0,
        low_water: int = 10,
        slowdown: float = 0.5,
        pool_size: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        guard: ServiceGuard | None = None,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("LearnUpon base_url must be an http(s) URL")
        if parts.username or parts.password:
            # Credentials in the URL would leak into every error message and log line.
            raise ValueError("LearnUpon base_url must not contain credentials; pass username/password")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._auth = (username, password)
        # The Basic header's token is the key pair too: an API echoing headers must not leak it either.
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._secrets = tuple(s for s in (token, password, username) if s)
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries, backoff, max_retry_after, max_backoff, jitter=True)
        self.low_water = low_water
        self.slowdown = slowdown
        self._sleep = sleep
        self._clock = clock
        self.session = session or pooled_session(pool_size)
        # bulkhead and circuit breaker for this portal's API (see broker.clients.guard)
        self.guard = guard or ServiceGuard(f"learnupon:{parts.hostname}")
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.rate_limit_remaining_minute: int | None = None
        self.rate_limit_remaining_week: int | None = None
        # course and learning path titles → ids, looked up once per client (one client per portal)
        self._catalog: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"LearnUponClient({self.base_url!r})"

    # -- budget, counters ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def budget(self, seconds: float | None) -> Iterator[CallScope]:
        """Bound every call made in this block (in this thread/context) to `seconds` in total."""
        scope = CallScope.start(math.inf if seconds is None else seconds, self._clock)
        token = _scope.set(scope)
        try:
            yield scope
        finally:
            _scope.reset(token)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counters[outcome] = self.counters.get(outcome, 0) + 1

    # -- the request loop ------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        ok_statuses: tuple[int, ...] = (),
        hide: tuple[str, ...] = (),
        creates: bool = False,
    ) -> requests.Response:
        """`_send` and tell the circuit breaker how the call ended (answered, or unavailable to the end)."""
        try:
            response = self._send(method, path, params=params, json=json, ok_statuses=ok_statuses, hide=hide,
                                  creates=creates)  # fmt: skip
        except LearnUponUnavailable as exc:
            if not exc.refused:
                self.guard.record(str(exc))
            raise
        except LearnUponError:
            self.guard.record(None)  # it answered (a 4xx): the service is there
            raise
        self.guard.record(None)
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        ok_statuses: tuple[int, ...] = (),
        hide: tuple[str, ...] = (),
        creates: bool = False,
    ) -> requests.Response:
        """Send with retries; return a 2xx (or `ok_statuses`) response, raise a `LearnUponError` otherwise.

        `hide` lists more strings (a generated password) to scrub from error text. `creates`: a POST that
        makes a new record; once it may have reached LearnUpon (read timeout, reset, 5xx) it is not sent
        again here but raises `LearnUponMaybeDone`, so the caller can look before creating twice.
        """
        scope = _scope.get() or CallScope.start(math.inf, self._clock)
        url = self.base_url + path
        failures = 0
        while True:
            self._maybe_slow_down(scope)
            if scope.cut(self.timeout) is None:
                self._count("budget_exhausted")
                spent = LearnUponUnavailable(
                    f"LearnUpon {method} {path}: time budget spent before the call", method=method, path=path
                )
                spent.refused = failures == 0  # not LearnUpon's fault unless its own answers used the time
                raise spent
            scope.requests += 1
            try:
                with self.guard.attempt() as attempt:
                    response = send_within(
                        self.session, method, url, budget=scope, timeout=self.timeout,
                        params=params, json=json, auth=self._auth,
                    )  # fmt: skip
                    if response.status_code in _RETRY_STATUSES:
                        attempt.failed(f"HTTP {response.status_code}")
            except ServiceRefused as exc:
                self._count(exc.reason)
                refused = LearnUponUnavailable(f"LearnUpon {method} {path}: {exc}", method=method, path=path)
                refused.refused = True
                raise refused from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
                self._count(kind)
                failures += 1
                reason = f"{kind.replace('_', ' ')} ({type(exc).__name__})"
                if creates and _may_have_arrived(exc):
                    raise LearnUponMaybeDone(
                        f"LearnUpon {method} {path}: {reason} after sending", method=method, path=path
                    ) from None
                self._before_retry(scope, method, path, failures, reason, None, None)
                continue
            except requests.RequestException as exc:
                self._count("error")
                raise LearnUponUnavailable(
                    f"LearnUpon {method} {path}: request failed ({type(exc).__name__})",
                    method=method,
                    path=path,
                ) from None
            self._read_rate_headers(response)
            status = response.status_code
            if 200 <= status < 300 or status in ok_statuses:
                self._count("ok" if status < 300 else f"http_{status}")
                return response
            if status in _RETRY_STATUSES:
                self._count("rate_limited" if status == 429 else "server_error")
                failures += 1
                if creates and status != 429:  # a 429 was refused unread; a 5xx may have half-happened
                    raise LearnUponMaybeDone(
                        f"LearnUpon {method} {path}: HTTP {status}", status=status, method=method, path=path
                    )
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                self._before_retry(
                    scope, method, path, failures, f"HTTP {status}", status, retry_after, response
                )
                continue
            self._count("auth_error" if status in (401, 403) else "client_error")
            raise self._error_for(response, method, path, hide)

    def _before_retry(
        self,
        scope: CallScope,
        method: str,
        path: str,
        failures: int,
        reason: str,
        status: int | None,
        retry_after: float | None,
        response: requests.Response | None = None,
    ) -> None:
        """Sleep before the next attempt, or raise `LearnUponUnavailable` when retries or time are spent."""
        try:
            wait = self.retry.wait(failures, retry_after, scope)
        except GiveUp as exc:
            if exc.out_of_time:
                self._count("budget_exhausted")
            error = LearnUponUnavailable(
                f"LearnUpon {method} {path}: {reason}; {exc}",
                status=status,
                api_message=scrub(_api_message(response), self._secrets) if response is not None else None,
                method=method,
                path=path,
            )
            error.retry_after = retry_after  # what LearnUpon asked for, for callers that pass it on (SCIM)
            raise error from None
        log.info("learnupon %s %s: %s, retry %d in %.2fs", method, path, reason, failures, wait)
        self._count("retried")
        self._sleep(wait)

    def _read_rate_headers(self, response: requests.Response) -> None:
        minute = _int_header(response.headers.get("X-LU-Rate-Limit-Remaining-Minute"))
        week = _int_header(response.headers.get("X-LU-Rate-Limit-Remaining-Week"))
        with self._lock:
            if minute is not None:
                self.rate_limit_remaining_minute = minute
            if week is not None:
                self.rate_limit_remaining_week = week

    def _maybe_slow_down(self, scope: CallScope) -> None:
        remaining_calls = self.rate_limit_remaining_minute
        if remaining_calls is None or remaining_calls > self.low_water:
            return
        # The fewer calls left this minute, the longer the pause (up to `slowdown`).
        pause = self.slowdown * (1 - remaining_calls / (self.low_water + 1))
        pause = min(pause, max(0.0, scope.left() / 4))
        if pause > 0:
            self._count("slowed")
            self._sleep(pause)

    def _error_for(
        self, response: requests.Response, method: str, path: str, hide: tuple[str, ...]
    ) -> LearnUponError:
        status = response.status_code
        api_message = scrub(_api_message(response), self._secrets + hide)
        text = f"LearnUpon {method} {path}: HTTP {status}" + (f": {api_message}" if api_message else "")
        kind = LearnUponError
        if status in (401, 403):
            kind = LearnUponAuthError
        elif status == 404:
            kind = LearnUponNotFound
        elif status == 409:
            kind = LearnUponConflict
        elif 400 <= status < 500:
            kind = LearnUponRejected
        return kind(text, status=status, api_message=api_message, method=method, path=path)

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise LearnUponError(
                f"LearnUpon {method} {path}: answer is not JSON",
                status=response.status_code,
                method=method,
                path=path,
            ) from None

    def _paginate(
        self, path: str, key: str, params: dict[str, Any] | None = None, max_pages: int = 1000
    ) -> list[dict]:
        """Every record of a listing, following `LU-Has-Next-Page` over `?page=N` (500 a page)."""
        items: list[dict] = []
        for page in range(1, max_pages + 1):
            response = self._request("GET", path, params={**(params or {}), "page": page}, ok_statuses=(404,))
            if response.status_code == 404:  # LearnUpon answers 404 for an empty result on some listings
                break
            chunk = _list_of(self._json(response, "GET", path), key)
            items.extend(chunk)
            if response.headers.get("LU-Has-Next-Page", "false").strip().lower() != "true" or not chunk:
                break
        return items

    # -- users -----------------------------------------------------------------------------------------------

    def find_user_by_email(self, email: str) -> dict[str, Any] | None:
        """The user with this email, or None (LearnUpon answers 404 when there is none)."""
        response = self._request("GET", "users/search", params={"email": email}, ok_statuses=(404,))
        if response.status_code == 404:
            return None
        wanted = email.strip().lower()
        for user in _list_of(self._json(response, "GET", "users/search"), "user"):
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
                return _id_of(self._json(response, "POST", "users"), "user", "POST", "users")
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
        users = _list_of(self._json(response, "GET", f"users/{int(user_id)}"), "user")
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
                return _id_of(self._json(response, "POST", "groups"), "group", "POST", "groups")
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


# ---- helpers -----------------------------------------------------------------------------------------------


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _api_message(response: requests.Response) -> str:
    """What the API said, short: `message` / `error` / `errors` of a JSON body, else the start of the text."""
    data = json_or_none(response)
    if data is None:
        return response.text[:200].strip()
    if isinstance(data, dict):
        for key in ("message", "error", "errors", "Message"):
            if data.get(key):
                return str(data[key])[:300]
    return str(data)[:200]


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the request surely never left: the connection could not be made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _list_of(data: Any, key: str) -> list[dict[str, Any]]:
    """The list in `{"user": [...]}`-style answers (tolerating a bare list). Where the key is not documented
    (learning paths), an answer holding exactly one list is taken whatever its key."""
    if isinstance(data, list):
        return [x for x in data if isinstance(x, dict)]
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        value = data.get(key, lists[0] if len(lists) == 1 else None)
        if isinstance(value, list):
            return [x for x in value if isinstance(x, dict)]
        if isinstance(value, dict):
            return [value]
    return []


def _id_of(data: Any, key: str, method: str, path: str) -> int:
    """The new record's id: `{"id": N}` (documented for users), tolerating `{"group": {"id": N}}`."""
    if isinstance(data, dict):
        if data.get("id") is not None:
            return int(data["id"])
        for k in (key, key.capitalize()):
            inner = data.get(k)
            if isinstance(inner, dict) and inner.get("id") is not None:
                return int(inner["id"])
    raise LearnUponError(f"LearnUpon {method} {path}: answer has no id", method=method, path=path)
