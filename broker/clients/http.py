"""Retrying calls to outside HTTP services (Microsoft Graph, LearnUpon) within a time budget: the parts their
clients share — the budget, when and how long to wait before a retry, Retry-After, pooled sessions, scrubbing.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter


@dataclass
class Budget:
    """The time a call (or a series of calls) may take; every attempt and every wait is cut to what is left.
    `seconds` is math.inf for no limit."""

    seconds: float
    deadline: float  # on `clock`
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def start(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Self:
        return cls(seconds, clock() + seconds, clock)

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
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if user_agent is not None:
        session.headers["User-Agent"] = user_agent
    return session
