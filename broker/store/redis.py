"""Redis store, for several broker replicas behind a load balancer."""

from __future__ import annotations

import redis

from broker.errors import StoreUnavailable


class RedisStore:
    """Keys are namespaced; every write carries a TTL; `take` is GETDEL (one round trip, atomic)."""

    def __init__(self, client: redis.Redis, namespace: str = "broker:"):
        self._redis = client
        self._ns = namespace

    @classmethod
    def from_url(cls, url: str, namespace: str = "broker:") -> RedisStore:
        client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )
        return cls(client, namespace)

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self._redis, method)(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis {method} failed: {exc}") from exc

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self._call("set", self._ns + key, value, ex=ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self._call("set", self._ns + key, value, ex=ttl, nx=True))

    def get(self, key: str) -> bytes | None:
        return self._call("get", self._ns + key)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return self._call("mget", [self._ns + key for key in keys]) if keys else []

    def take(self, key: str) -> bytes | None:
        return self._call("getdel", self._ns + key)

    def delete(self, key: str) -> None:
        self._call("delete", self._ns + key)

    def incr(self, key: str, ttl: int) -> int:
        # INCR and EXPIRE NX in one round trip: the window starts at the first hit and is never extended.
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(self._ns + key)
            pipe.expire(self._ns + key, ttl, nx=True)
            count, _ = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis incr failed: {exc}") from exc
        return int(count)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False
