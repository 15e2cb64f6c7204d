"""The LearnUpon REST API v1 request loop: pooled, retrying, rate-limit aware, bounded by a time budget.

Only this package speaks HTTP to LearnUpon, and only with call shapes LearnUpon documents or that code talking
to real portals uses (docs/learnupon-api.md lists each call and its source). The calls themselves (users, groups,
memberships, enrolments, the catalogue) are in broker.clients.learnupon.client.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import logging
import math
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
    pooled_session,
    retry_after_seconds,
    scrub,
    send_within,
)
from broker.clients.learnupon.answers import int_header, list_of, message_of
from broker.clients.learnupon.errors import (
    LearnUponAuthError,
    LearnUponConflict,
    LearnUponError,
    LearnUponMaybeDone,
    LearnUponNotFound,
    LearnUponRejected,
    LearnUponUnavailable,
)

log = logging.getLogger("broker.clients.learnupon")

_RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class CallScope(Budget):
    """A budget for a series of calls (one login's provisioning). `requests` counts HTTP requests made."""

    requests: int = 0


_scope: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar(
    "learnupon_call_scope", default=None
)


class LearnUponTransport:
    """One portal's API connection (the base of `LearnUponClient`). Thread-safe; share one instance per portal so connections are pooled.

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
                if creates and isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    # the answer started and was cut off: the request had arrived, the record may exist
                    raise LearnUponMaybeDone(
                        f"LearnUpon {method} {path}: answer cut off ({type(exc).__name__})",
                        method=method,
                        path=path,
                    ) from None
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
                api_message=scrub(message_of(response), self._secrets) if response is not None else None,
                method=method,
                path=path,
            )
            error.retry_after = retry_after  # what LearnUpon asked for, for callers that pass it on (SCIM)
            raise error from None
        log.info("learnupon %s %s: %s, retry %d in %.2fs", method, path, reason, failures, wait)
        self._count("retried")
        self._sleep(wait)

    def _read_rate_headers(self, response: requests.Response) -> None:
        minute = int_header(response.headers.get("X-LU-Rate-Limit-Remaining-Minute"))
        week = int_header(response.headers.get("X-LU-Rate-Limit-Remaining-Week"))
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
        api_message = scrub(message_of(response), self._secrets + hide)
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
            chunk = list_of(self._json(response, "GET", path), key)
            items.extend(chunk)
            if response.headers.get("LU-Has-Next-Page", "false").strip().lower() != "true" or not chunk:
                break
        return items


# ---- helpers -----------------------------------------------------------------------------------------------


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the request surely never left: the connection could not be made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )
