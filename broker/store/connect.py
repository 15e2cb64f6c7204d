"""Open the store a URL names: in memory (one process) or Redis (standalone, Sentinel, Cluster)."""

from __future__ import annotations

from broker.store import Store


def open_store(url: str, *, namespace: str = "broker:") -> Store:
    """A store for `url`: `memory://` (single process), or Redis (see broker.store.redis for the URL forms)."""
    if url == "memory://" or url == "memory":
        from broker.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")):
        from broker.store.redis import RedisStore

        return RedisStore.from_url(url, namespace=namespace)
    raise ValueError(
        f"unknown store URL scheme in {url.split('://')[0]!r}: use memory:// or redis://host:port/db"
    )
