"""Calls to outside HTTP services (Microsoft Graph, LearnUpon, metadata servers) within a wall-clock deadline:
the parts their clients share — the budget (never past the login's deadline, counted from the request's
arrival), sending with a watchdog that cuts a slow-dripping answer at the deadline, when and how long to wait
before a retry, Retry-After, pooled sessions, scrubbing. Bulkheads and circuit breakers are in `guard.py`.
"""

from __future__ import annotations

import contextvars
import email.utils
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The monotonic time by which every outside call made for the current request must be over (set when a request
# arrives, from the login's deadline; None outside requests, e.g. in a background job).
_request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "outbound_request_deadline", default=None
)


def set_request_deadline(deadline: float | None) -> None:
    """Bound every budget started in this context (one request) by `deadline` (time.monotonic()); None at
    the request's end."""
    _request_deadline.set(deadline)


def request_time_left() -> float:
    """Seconds left before the current request's deadline; math.inf outside a request."""
    deadline = _request_deadline.get()
    return math.inf if deadline is None else deadline - time.monotonic()


@dataclass
class Budget:
    """The time a call (or a series of calls) may take; every attempt and every wait is cut to what is left.
    `seconds` is math.inf for no limit."""

    seconds: float
    deadline: float  # on `clock`
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def start(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Self:
        """`seconds` from now, but never past the current request's deadline (which counts from its arrival,
        so time spent in earlier steps is already taken off)."""
        deadline = clock() + seconds
        request_deadline = _request_deadline.get()
        if request_deadline is not None and clock is time.monotonic:
            deadline = min(deadline, request_deadline)
        return cls(seconds, deadline, clock)

    def left(self) -> float:
        return self.deadline - self.clock()

    def cut(self, timeout: tuple[float, float]) -> tuple[float, float] | None:
        """A (connect, read) timeout cut to the time left; None when none is left."""
        left = self.left()
        if left <= 0:
            return None
        return min(timeout[0], left), min(timeout[1], left)


class GiveUp(Exception):
    """A retry cannot help; the text says why. `out_of_time` when the budget is the reason."""

    def __init__(self, why: str, *, out_of_time: bool = False):
        super().__init__(why)
        self.out_of_time = out_of_time


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries, and how long to wait before each: a server's Retry-After (up to `max_retry_after`),
    else `backoff` doubling per retry up to `max_backoff` — with `jitter` a random part of it, so replicas
    retrying together do not hit the service in lockstep."""

    max_retries: int
    backoff: float
    max_retry_after: float
    max_backoff: float = math.inf
    jitter: bool = False

    def wait(self, failures: int, retry_after: float | None, budget: Budget) -> float:
        """Seconds to wait after `failures` failed attempts; `GiveUp` when a retry cannot help."""
        if failures > self.max_retries:
            raise GiveUp(f"gave up after {failures} attempts")
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                raise GiveUp(
                    f"Retry-After {retry_after:g} s is longer than the {self.max_retry_after:g} s we wait"
                )
            wait = retry_after
        else:
            wait = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            if self.jitter:
                wait = random.uniform(0, wait)  # noqa: S311 - spreading retries, not a secret
        if wait >= budget.left():
            # waiting for the budget to run out and then failing would only delay the caller
            raise GiveUp(
                f"a retry in {wait:.2f} s would not fit the {budget.seconds:g} s budget", out_of_time=True
            )
        return wait


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (a number, or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def json_or_none(response: requests.Response) -> Any:
    """The decoded JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every (non-empty) secret replaced by `***`: for error messages an API may have echoed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def pooled_session(pool_size: int, user_agent: str | None = None) -> requests.Session:
    """A Session keeping up to `pool_size` connections per host, without transport-level retries (the
    clients retry themselves, within their budget)."""
    session = requests.Session()
    adapter = _WatchedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if user_agent is not None:
        session.headers["User-Agent"] = user_agent
    return session


# ---- sending within a wall-clock deadline ----------------------------------------------------------------------


class DeadlineExceeded(requests.ReadTimeout):
    """The answer did not arrive in full by the deadline (a slow-dripping server): the connection was cut."""


class _Watched:
    """The connection one call is using, so a watchdog timer can cut it; `done` once the call is over (the
    connection may then serve another call, and must not be touched)."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.done = False
        self.cut = False
        self.lock = threading.Lock()

    def abort(self) -> None:
        with self.lock:
            sock = getattr(self.connection, "sock", None)
            if self.done or sock is None:
                return
            self.cut = True
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the blocked read in the calling thread returns at once
            except OSError:
                pass


_watched = threading.local()


def _remember_connection(conn: Any) -> Any:
    watched = getattr(_watched, "current", None)
    if watched is not None:
        watched.connection = conn
    return conn


def _release_connection(conn: Any) -> None:
    # before the connection goes back to the pool (where another call may take it), the watchdog lets go
    watched = getattr(_watched, "current", None)
    if watched is not None and watched.connection is conn:
        with watched.lock:
            watched.done = True


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None):
        return _remember_connection(super()._get_conn(timeout))

    def _put_conn(self, conn: Any) -> None:
        _release_connection(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None):
        return _remember_connection(super()._get_conn(timeout))

    def _put_conn(self, conn: Any) -> None:
        _release_connection(conn)
        super()._put_conn(conn)


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools tell the watchdog which connection a call uses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def send_within(
    session: requests.Session,
    method: str,
    url: str,
    *,
    budget: Budget,
    timeout: tuple[float, float],
    max_bytes: int = 64 * 1024 * 1024,
    **kwargs: Any,
) -> requests.Response:
    """One request whose whole answer (status, headers, body) must arrive before `budget` runs out: a watchdog
    cuts the connection at the deadline, so a server sending a byte now and then cannot hold the caller past
    it (a read timeout only bounds each wait for the next bytes). The body is read here, up to `max_bytes`.
    Raises requests exceptions as `session.request` does; `DeadlineExceeded` when cut."""
    cut = budget.cut(timeout)
    if cut is None:
        raise DeadlineExceeded(f"no time left before the deadline for {method} {url}")
    watched = _Watched()
    timer = threading.Timer(max(0.0, budget.left()), watched.abort) if math.isfinite(budget.left()) else None
    _watched.current = watched
    if timer is not None:
        timer.daemon = True
        timer.start()
    response: requests.Response | None = None
    try:
        response = session.request(method, url, timeout=cut, stream=True, **kwargs)
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                raise requests.exceptions.ContentDecodingError(f"answer larger than {max_bytes} bytes")
        if watched.cut:  # cut in the headers, a partial answer can look complete: it is not
            raise DeadlineExceeded(
                f"{method} {url}: answer not complete within the {budget.seconds:g} s deadline"
            )
        response._content = bytes(body)  # read to the end: urllib3 has put the connection back in the pool
        return response
    except requests.RequestException as exc:
        if response is not None:
            response.close()
        if watched.cut:
            raise DeadlineExceeded(
                f"{method} {url}: answer not complete within the {budget.seconds:g} s deadline"
            ) from exc
        raise
    finally:
        _watched.current = None
        with watched.lock:
            watched.done = True
        if timer is not None:
            timer.cancel()
