"""Whether a store keeps what the broker writes: persistence across restarts, and no eviction of TTL keys.

The replay cache is the only protection against a captured IdP-initiated response being posted again, so an
evicting `maxmemory-policy` (which drops keys with a TTL, and every broker key has one) is an error, and a
Redis without persistence is a warning (the store epoch then refuses what was issued before a wipe).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from broker.errors import BrokerError

SAFE_POLICIES = ("noeviction",)


@dataclass(frozen=True)
class Durability:
    """What the store said about itself. `errors` make the store unfit for logins; `warnings` do not."""

    persistence: str  # "aof", "rdb", "aof+rdb", "none", "process" (memory store), or "unknown"
    eviction_policy: str  # e.g. "noeviction"; "none" for the memory store; "unknown" when not readable
    errors: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.errors


def judge(appendonly: str | None, save: str | None, policy: str | None) -> Durability:
    """Findings for a Redis's `appendonly`, `save` and `maxmemory-policy` (None: could not be read)."""
    errors: list[str] = []
    warnings: list[str] = []
    aof = appendonly is not None and appendonly.strip().lower() in ("yes", "1")
    rdb = bool(save and save.strip())
    if appendonly is None and save is None:
        persistence = "unknown"
        warnings.append(
            "cannot read Redis persistence settings (CONFIG GET refused?): make sure appendonly is on, "
            "or IdP-initiated responses can be refused for a while after a restart"
        )
    else:
        persistence = "+".join(kind for kind, on in (("aof", aof), ("rdb", rdb)) if on) or "none"
        if persistence == "none":
            warnings.append(
                "Redis has no persistence (appendonly no, save ''): a restart empties the replay cache; the "
                "store epoch then refuses IdP-initiated responses issued before it, but set appendonly yes"
            )
        elif not aof:
            warnings.append(
                "Redis persists only by RDB snapshots: replay-cache entries written since the last snapshot "
                "are lost on a crash; set appendonly yes"
            )
    shown = policy.strip().lower() if policy else "unknown"
    if policy is None:
        warnings.append("cannot read Redis maxmemory-policy: make sure it is noeviction")
    elif shown not in SAFE_POLICIES:
        errors.append(
            f"Redis maxmemory-policy is {shown}: it evicts keys with a TTL (every broker key has one, "
            "including the replay cache and pending logins); set maxmemory-policy noeviction"
        )
    return Durability(persistence, shown, tuple(errors), tuple(warnings))


DURABILITY_EVERY = 30.0


@dataclass
class DurabilityProbe:
    """The last durability reading of a store, kept for `DURABILITY_EVERY` seconds."""

    checked: float = -1e9
    last: Durability | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, store: Any) -> Durability | None:
        now = time.monotonic()
        if now - self.checked < DURABILITY_EVERY:
            return self.last
        # one reader at a time; the others use the last reading rather than wait
        if not self._lock.acquire(blocking=False):
            return self.last
        try:
            try:
                self.last = store.durability()
            except BrokerError:
                self.last = None
            self.checked = now
            return self.last
        finally:
            self._lock.release()
