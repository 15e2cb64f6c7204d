"""In-process store for a single broker process (the default, and the demo's)."""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable

from broker.errors import StoreFull
from broker.store import ConsumeResult
from broker.store.durability import Durability


class MemoryStore:
    """A dict with expiry. Expired keys are swept as time passes, so memory stays bounded by the TTLs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 1_000_000):
        self._clock = clock
        self._max_keys = max_keys
        self._data: dict[str, tuple[float, bytes]] = {}
        self._expiries: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        # Everything is lost when the process ends, so the epoch is the process's start: an IdP-initiated
        # response consumed by an earlier process is refused rather than accepted a second time.
        self._epoch = float(int(time.time()))  # whole seconds, like most IssueInstants
        self._logs: dict[str, deque[tuple[float, bytes]]] = {}

    def _sweep(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            expires, key = heapq.heappop(self._expiries)
            entry = self._data.get(key)
            if entry is not None and entry[0] <= now:
                del self._data[key]

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def _set(self, key: str, value: bytes, ttl: int, now: float) -> None:
        if len(self._data) >= self._max_keys and key not in self._data:
            raise StoreFull(f"memory store is full ({self._max_keys} keys); use Redis for this load")
        expires = now + ttl
        self._data[key] = (expires, value)
        heapq.heappush(self._expiries, (expires, key))

    def put(self, key: str, value: bytes, ttl: int) -> None:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            self._set(key, value, ttl, now)

    def put_many(self, items: list[tuple[str, bytes, int]]) -> None:
        for key, value, ttl in items:
            self.put(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            if self._live(key, now) is not None:
                return False
            self._set(key, value, ttl, now)
            return True

    def claim(self, key: str, value: bytes, ttl: int) -> bytes | None:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            found = self._live(key, now)
            if found is None or found == value:
                self._set(key, value, ttl, now)
            return found

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key, self._clock())

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        with self._lock:
            now = self._clock()
            return [self._live(key, now) for key in keys]

    def take(self, key: str) -> bytes | None:
        with self._lock:
            now = self._clock()
            value = self._live(key, now)
            self._data.pop(key, None)
            return value

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            entry = self._data.get(key)
            if entry is None or entry[0] <= now:
                self._set(key, b"1", ttl, now)
                return 1
            count = int(entry[1]) + 1
            self._data[key] = (entry[0], str(count).encode())
            return count

    def incr_and_get(self, counter: str, ttl: int, key: str) -> tuple[int, bytes | None]:
        return self.incr(counter, ttl), self.get(key)

    def log_append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        with self._lock:
            now = self._clock()
            entries = self._logs.setdefault(key, deque())
            entries.appendleft((now, value))
            while len(entries) > max_entries:
                entries.pop()
            self._trim_log(key, now - ttl)

    def log_recent(self, key: str, count: int, *, ttl: int) -> list[bytes]:
        with self._lock:
            self._trim_log(key, self._clock() - ttl)
            return [value for _, value in list(self._logs.get(key, ()))[:count]]

    def _trim_log(self, key: str, cutoff: float) -> None:
        """Drop the entries added at or before `cutoff` (newest first: the oldest are at the end)."""
        entries = self._logs.get(key)
        if entries is None:
            return
        while entries and entries[-1][0] <= cutoff:
            entries.pop()
        if not entries:
            del self._logs[key]

    def ping(self) -> bool:
        return True

    def consume(
        self, replay_key: str, ttl: int, *, pending_key: str | None, issued_at: float, wipe_margin: float = 0
    ) -> ConsumeResult:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            if self._live(replay_key, now) is not None:
                return "replay"
            if pending_key is None and issued_at < self._epoch:
                return "before_epoch"
            if pending_key is not None and self._data.pop(pending_key, (0.0, None))[0] <= now:
                return "pending_gone"
            self._set(replay_key, b"1", ttl, now)
            return "ok"

    def epoch(self) -> float:
        return self._epoch

    def durability(self) -> Durability:
        return Durability("process", "none")

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            return len(self._data)
