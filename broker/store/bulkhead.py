"""A bulkhead for the store: at most `limit` store calls in flight in this process (gunicorn's threads − 1,
set by the app), so a frozen Redis can hold at most that many request threads for its socket timeout and one
thread always stays free for /healthz, /readyz and the fast 503s. When every slot is taken by calls that have
been waiting longer than `STALLED_AFTER`, the store is stalled: further calls fail at once instead of queueing
behind them. Healthy contention (every slot busy with quick calls) waits up to `WAIT_FOR_SLOT` for one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from broker.errors import StoreUnavailable

STALLED_AFTER = 0.25  # seconds: a Redis command normally takes a millisecond, a loaded one tens of them
WAIT_FOR_SLOT = (
    0.05  # seconds a call waits for a slot while no call in flight is stalled (checked every 5 ms)
)


class StoreBulkhead:
    def __init__(self, limit: int | None = None):
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # in-flight call (id) → when it started
        self._next = 0
        self.refused = 0
        self.set_limit(limit)

    def set_limit(self, limit: int | None) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit is not None else None

    def stalled(self, over: float = STALLED_AFTER) -> bool:
        """True while a store call has been in flight longer than `over` seconds (Redis frozen, or the network
        to it): calls that find no free slot then fail at once."""
        now = time.monotonic()
        with self._lock:
            return any(now - started > over for started in self._started.values())

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        slots = self._slots
        if slots is not None and not slots.acquire(blocking=False):
            waited_until = time.monotonic() + WAIT_FOR_SLOT
            while not slots.acquire(timeout=0.005):
                if self.stalled() or time.monotonic() > waited_until:
                    with self._lock:
                        self.refused += 1
                    raise StoreUnavailable(
                        f"store busy: {self.limit} calls already waiting on it ({what} not sent)"
                    )
        with self._lock:
            self._next += 1
            call = self._next
            self._started[call] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._started[call]
            if slots is not None:
                slots.release()


# one per process: every Redis store in it shares the request threads
STORE_BULKHEAD = StoreBulkhead()


def set_process_limit(limit: int | None) -> None:
    """At most `limit` store calls in flight in this process (None: no limit, for commands and workers)."""
    if limit != STORE_BULKHEAD.limit:
        STORE_BULKHEAD.set_limit(limit)
