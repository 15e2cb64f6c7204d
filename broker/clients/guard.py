"""Keeping one slow or failing outside service from taking the whole broker down with it.

`ServiceGuard` is two things per service (one LearnUpon portal, one Graph tenant): a **bulkhead** (at most
`max_concurrent` calls in flight in this process; a call that finds it full fails at once instead of taking
one more request thread) and a **circuit breaker** (after `failures_to_open` failed calls in a row — each
after its own retries — the service is skipped for `cooldown` seconds; then one trial call goes through, and its outcome closes or re-opens
the circuit). A refused call raises `ServiceRefused`, which the clients turn into their "unavailable" error,
so the portal's or upstream's failure policy decides what the login does.

Written here rather than taken from pybreaker or circuitbreaker: pybreaker holds one lock for the whole call
(every call through a breaker would run one at a time), and circuitbreaker keeps no lock, a process-wide
registry and lets every call through when half-open. This is a counter, a deadline and a semaphore.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]

# All outside calls of this process together: set to (request threads - 1) so one thread is always free for
# /healthz, /readyz and logins that need no outside call, whatever the services do. None: no such limit.
_process_slots: threading.BoundedSemaphore | None = None
_process_limit: int | None = None


def set_process_limit(limit: int | None) -> None:
    """At most `limit` outside calls in flight in this process, over every service (None: no limit)."""
    global _process_slots, _process_limit
    if limit != _process_limit:
        _process_slots = threading.BoundedSemaphore(limit) if limit is not None else None
        _process_limit = limit


class ServiceRefused(Exception):
    """The guard refused the call without trying: `reason` is "bulkhead_full" or "circuit_open"."""

    def __init__(self, service: str, reason: str, detail: str):
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.reason = reason


@dataclass(frozen=True)
class GuardStatus:
    """What /readyz and /metrics show for one service."""

    service: str
    state: State
    consecutive_failures: int
    in_flight: int
    max_concurrent: int
    retry_in: float  # seconds until the open circuit lets a trial call through (0 when not open)
    refused: dict[str, int]  # calls refused since start, by reason
    last_failure: str | None


class Attempt:
    """One attempt through the guard; the client marks an answer that counts as a failure (429, 5xx)."""

    def __init__(self) -> None:
        self.failure: str | None = None

    def failed(self, why: str) -> None:
        self.failure = why


class ServiceGuard:
    def __init__(
        self,
        service: str,
        *,
        max_concurrent: int = 8,
        failures_to_open: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.service = service
        self.max_concurrent = max_concurrent
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown
        self._clock = clock
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._last_failure: str | None = None
        self._refused: dict[str, int] = {}

    def _refuse(self, reason: str, detail: str) -> ServiceRefused:
        self._refused[reason] = self._refused.get(reason, 0) + 1
        return ServiceRefused(self.service, reason, detail)

    def _admit(self) -> bool:
        """Under the lock: True when this call is the half-open circuit's trial call."""
        if self._opened_at is None:
            return False
        left = self._opened_at + self.cooldown - self._clock()
        if left > 0:
            raise self._refuse(
                "circuit_open",
                f"skipped for {left:.0f} more s after {self._failures} failures in a row "
                f"(last: {self._last_failure})",
            )
        if self._trial_running:
            raise self._refuse("circuit_open", "circuit half-open: a trial call is under way")
        self._trial_running = True
        return True

    @contextmanager
    def attempt(self) -> Iterator[Attempt]:
        """Guard one attempt (one HTTP request): refused (`ServiceRefused`) when the circuit is open or the
        bulkhead full. The circuit counts whole calls (`record`, after the client's retries), except for the
        half-open circuit's trial attempt, whose outcome (an exception, or `attempt.failed()`) decides alone."""
        with self._lock:
            trial = self._admit()
        shared = _process_slots
        if not self._slots.acquire(blocking=False):
            self._cancel(trial)
            raise self._refuse(
                "bulkhead_full", f"{self.max_concurrent} calls to it already in flight from this process"
            )
        if shared is not None and not shared.acquire(blocking=False):
            self._slots.release()
            self._cancel(trial)
            raise self._refuse(
                "bulkhead_full", f"{_process_limit} outside calls already in flight from this process"
            )
        with self._lock:
            self._in_flight += 1
        attempt = Attempt()
        try:
            yield attempt
        except BaseException as exc:
            attempt.failure = attempt.failure or type(exc).__name__
            raise
        finally:
            self._slots.release()
            if shared is not None:
                shared.release()
            with self._lock:
                self._in_flight -= 1
            if trial:
                self._settle(attempt.failure, trial=True)

    def record(self, failure: str | None) -> None:
        """The outcome of a whole call (after retries): None when the service answered, else why it did not
        (timeouts, 5xx, 429 to the end). `failures_to_open` failed calls in a row open the circuit."""
        self._settle(failure, trial=False)

    def _cancel(self, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False

    def _settle(self, failure: str | None, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if failure is None:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            self._last_failure = failure
            if trial or self._failures >= self.failures_to_open:
                self._opened_at = self._clock()

    def status(self) -> GuardStatus:
        with self._lock:
            now = self._clock()
            if self._opened_at is None:
                state: State = "closed"
                retry_in = 0.0
            else:
                retry_in = max(0.0, self._opened_at + self.cooldown - now)
                state = "open" if retry_in > 0 else "half-open"
            return GuardStatus(self.service, state, self._failures, self._in_flight, self.max_concurrent,
                               retry_in, dict(self._refused), self._last_failure)  # fmt: skip
