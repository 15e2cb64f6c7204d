"""Capped-log entries written in batches: one store round trip carries every entry that queued up within
`LINGER`, instead of one round trip per login (a round trip costs a login ~0.3 ms of CPU, see bench/README.md).

One writer thread per process, started on the first entry (so a gunicorn worker starts its own after the fork).
A reader in the same process writes what is queued first, so it always sees its own entries; other processes
see them within `LINGER`. A process stopped normally writes the rest at exit; one killed outright (SIGKILL, OOM)
loses at most the entries of its last `LINGER`. The login's audit line, written at once, stays the complete record.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from broker.errors import StoreUnavailable

log = logging.getLogger(__name__)

LINGER = 0.05  # seconds an entry may wait for others to share its round trip
MAX_BATCH = 200  # entries per round trip
MAX_QUEUED = 10_000  # while the store is unreachable: newer entries are dropped (and counted) beyond this

# (key, max_entries, ttl, values): one write of several entries to one log
Write = Callable[[str, int, int, list[bytes]], None]


class LogBatches:
    def __init__(self, write: Write):
        self._write = write
        self._lock = threading.Lock()  # the queue
        self._writing = threading.Lock()  # one write at a time, so entries reach the log in their order
        self._queued: dict[tuple[str, int, int], list[bytes]] = {}
        self._count = 0
        self._wake = threading.Event()
        self._owner_pid: int | None = None  # the process whose writer thread runs
        self.dropped = 0

    def append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        with self._lock:
            if self._owner_pid != os.getpid():
                self._start_writer()
            if self._count >= MAX_QUEUED:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("activity log: %d entries dropped, the store has not taken any for a while",
                                self.dropped)  # fmt: skip
                return
            self._queued.setdefault((key, max_entries, ttl), []).append(value)
            self._count += 1
        self._wake.set()

    def flush(self) -> None:
        """Write everything queued now, in the calling thread."""
        with self._writing:
            with self._lock:
                batches, self._queued, self._count = self._queued, {}, 0
            for (key, max_entries, ttl), values in batches.items():
                for start in range(0, len(values), MAX_BATCH):
                    chunk = values[start : start + MAX_BATCH]
                    try:
                        self._write(key, max_entries, ttl, chunk)
                    except (
                        StoreUnavailable
                    ) as exc:  # the logins themselves went through: only their log is lost
                        log.warning("activity log: %d entries not recorded: %s", len(chunk), exc)

    def _start_writer(self) -> None:
        # a fork copied the parent's queue, which the parent writes itself
        self._queued, self._count, self._owner_pid = {}, 0, os.getpid()
        threading.Thread(target=self._run, name="log-batches", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(LINGER)  # let the entries of the next few logins join this one
            self._wake.clear()
            self.flush()
