"""Capped-log entries written in batches: one store round trip carries every entry that queued up within
`LINGER`, instead of one round trip per login (a round trip costs a login ~0.3 ms of CPU, see bench/README.md).

One writer thread per store (a process keeps its store across config reloads, so one per gunicorn worker),
started on the first entry, after the fork. A reader in the same process writes what is queued first, so it
sees its own entries; other processes see them within `LINGER`. A process stopped normally writes the rest at
exit; one killed outright (SIGKILL, OOM) loses the entries of its last `LINGER`. The login's audit line,
written at once, stays the complete record.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

LINGER = 0.05  # seconds an entry may wait for others to share its round trip
MAX_BATCH = 200  # entries per round trip
# While the store is unreachable, newer entries are dropped (and counted) beyond this many queued; one batch
# being written may hold as many again.
MAX_QUEUED = 10_000
IDLE_CHECK = 1.0  # seconds: how often an idle writer looks whether its store is still in use

# (key, max_entries, ttl, values): one write of several entries to one log; raises on failure
Write = Callable[[str, int, int, list[bytes]], None]

_live: weakref.WeakSet[LogBatches] = weakref.WeakSet()


class LogBatches:
    def __init__(self, write: Write):
        self._write = write
        self._reset()
        self.dropped = 0
        _live.add(self)

    def _reset(self) -> None:
        """Fresh locks and an empty queue (also in a forked child: the parent writes what it had queued)."""
        self._lock = threading.Lock()  # the queue
        self._writing = threading.Lock()  # one write at a time, so entries reach the log in their order
        self._queued: dict[tuple[str, int, int], list[bytes]] = {}
        self._count = 0
        self._wake = threading.Event()
        self._owner_pid: int | None = None  # the process whose writer thread runs

    def append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        with self._lock:
            if self._owner_pid != os.getpid():
                self._owner_pid = os.getpid()
                threading.Thread(target=_run, args=(weakref.ref(self), self._wake), name="log-batches",
                                 daemon=True).start()  # fmt: skip
            if self._count >= MAX_QUEUED:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("activity log: %d entries dropped, the store has not taken any for a while",
                                self.dropped)  # fmt: skip
                return
            self._queued.setdefault((key, max_entries, ttl), []).append(value)
            self._count += 1
        self._wake.set()

    def flush(self, wait: float = -1) -> bool:
        """Write everything queued now, in the calling thread; False when another write did not end within
        `wait` seconds (-1: as long as it takes). After the first failed write the rest is dropped too: the
        store is failing, and a reader should not wait on it once per batch."""
        if not self._writing.acquire(timeout=wait):
            return False
        try:
            with self._lock:
                batches, self._queued, self._count = self._queued, {}, 0
            chunks = [(key, values[start : start + MAX_BATCH])
                      for key, values in batches.items() for start in range(0, len(values), MAX_BATCH)]  # fmt: skip
            for index, ((key, max_entries, ttl), chunk) in enumerate(chunks):
                try:
                    self._write(key, max_entries, ttl, chunk)
                except Exception as exc:  # the logins themselves went through: only their log is lost
                    lost = len(chunk) + sum(len(rest) for _, rest in chunks[index + 1 :])
                    log.warning("activity log: %d entries not recorded: %s", lost, exc)
                    break
            return True
        finally:
            self._writing.release()


def _run(batches_ref: weakref.ref[LogBatches], wake: threading.Event) -> None:
    """The writer: holds only a weak reference, so a store no longer used takes its thread with it."""
    while True:
        woken = wake.wait(IDLE_CHECK)
        batches = batches_ref()
        if batches is None:
            return
        if woken:
            time.sleep(LINGER)  # let the entries of the next few logins join this one
            wake.clear()
            try:
                batches.flush()
            except Exception:  # never let one odd failure stop every later write
                log.exception("activity log: batch writer failed")
        del batches


def _flush_all() -> None:
    for batches in list(_live):
        batches.flush(wait=1.0)


def _after_fork_in_child() -> None:
    for batches in list(_live):
        batches._reset()


atexit.register(_flush_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
