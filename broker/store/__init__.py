"""State store: pending AuthnRequests, the replay cache and caches, shared by all replicas.

Every key expires (except the epoch). `take` reads and deletes in one step, so a pending request is consumed
once even when two replicas race for it; `add` stores only when the key is absent. `consume` does what a login
needs in one atomic operation: replay entry, pending login and the store epoch.

The **epoch** is a key written when the store is first used. When it is missing later, the store lost its data
(a Redis restart without persistence, a flush): a new epoch is set, and IdP-initiated responses issued before
it are refused, since the replay cache that would have caught them is gone.

A capped log (`log_append`, `log_recent`) keeps the last logins for the admin's activity page.
"""

from __future__ import annotations

from typing import Literal, Protocol

from broker.store import keys
from broker.store.durability import Durability

EPOCH_KEY = keys.STORE_EPOCH

ConsumeResult = Literal["ok", "replay", "pending_gone", "before_epoch"]


class Store(Protocol):
    def put(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` under `key` for `ttl` seconds, replacing any value."""

    def put_many(self, items: list[tuple[str, bytes, int]]) -> None:
        """`put` for each (key, value, ttl), in one round trip (not atomic: each key is written on its own)."""

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if `key` is absent; True when stored (False means: already there)."""

    def claim(self, key: str, value: bytes, ttl: int) -> bytes | None:
        """In one atomic round trip: store `value` for `ttl` seconds when `key` is absent, renew its TTL when it
        already holds `value`, leave another value alone. Returns the value found (None: it was absent)."""

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Values for several keys in one round trip (None where absent or expired)."""

    def take(self, key: str) -> bytes | None:
        """Atomically read and delete; None when absent or expired."""

    def delete(self, key: str) -> None:
        """Remove `key` if present."""

    def incr(self, key: str, ttl: int) -> int:
        """Add one to a counter that starts at 0 and expires `ttl` seconds after its first increment."""

    def incr_and_get(self, counter: str, ttl: int, key: str) -> tuple[int, bytes | None]:
        """`incr(counter, ttl)` and `get(key)` in one round trip: a rate-limited request and the read it makes
        next (the ACS and its pending login)."""

    def log_append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        """Add `value` to the capped log at `key`: at most `max_entries` are kept (the oldest go first), and
        each entry is dropped `ttl` seconds after it was added (what an activity log with PII needs). The
        Redis store writes entries in batches, a moment later (`log_recent` in the same process sees them)."""

    def log_recent(self, key: str, count: int, *, ttl: int) -> list[bytes]:
        """Up to `count` entries of the log at `key`, newest first, none older than `ttl` seconds (older
        entries are dropped now, not only hidden)."""

    def ping(self) -> bool:
        """True when the store answers."""

    def consume(
        self, replay_key: str, ttl: int, *, pending_key: str | None, issued_at: float, wipe_margin: float = 0
    ) -> ConsumeResult:
        """In one atomic operation: refuse when `replay_key` exists ("replay"); without a pending login (an
        IdP-initiated response) refuse what was issued (unix time) before the store epoch ("before_epoch");
        take `pending_key` ("pending_gone" when absent); then write `replay_key` for `ttl` seconds. A retry of
        the same call after a lost answer is safe. When the epoch is missing (the store was wiped since this
        process saw it), the new epoch is now + `wipe_margin` (the IdPs' clock tolerance)."""

    def epoch(self) -> float:
        """The store epoch (unix time), written now when absent."""

    def durability(self) -> Durability:
        """Persistence and eviction settings, judged (see broker.store.durability)."""
