"""Redis store, for several broker replicas behind a load balancer.

One URL says which Redis: `redis://` / `rediss://` / `unix://` (one server or a managed endpoint),
`redis+sentinel://[:password@]host:26379[,host:26379…]/<service>[/<db>]` (Sentinel: the current master is
looked up and followed through failovers), or `redis+cluster://[:password@]host:6379[,host:6379…]` (Redis
Cluster). Every command touches one key, so all three behave the same.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from broker.errors import StoreUnavailable

TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}

# INCR, and start the window's TTL on the first hit only: atomic, and one key (so it works on a cluster).
_INCR_WITH_TTL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""

# The capped log is a stream: its entry ids are the Redis server's clock (the same for every replica), so
# "older than ttl" is one XTRIM MINID. Trimmed on write and on read; the key itself expires with its newest entry.
_LOG_APPEND = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl_ms = tonumber(ARGV[3]) * 1000
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', 'v', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', now_ms - ttl_ms + 1)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
"""
_LOG_RECENT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('XTRIM', KEYS[1], 'MINID', now_ms - tonumber(ARGV[2]) * 1000 + 1)
local values = {}
for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])) do
  values[#values + 1] = entry[2][2]
end
return values
"""


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        hosts.append((host or part.strip(), int(port) if port else default_port))
    return hosts


def _password(netloc: str) -> str | None:
    if "@" not in netloc:
        return None
    credentials = netloc.rsplit("@", 1)[0]
    return unquote(credentials.split(":", 1)[1]) if ":" in credentials else unquote(credentials) or None


def client_from_url(url: str) -> redis.Redis | RedisCluster:
    parts = urlsplit(url)
    if parts.scheme == "redis+sentinel":
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError(
                "a redis+sentinel:// URL names the service: redis+sentinel://host:26379/mymaster/0"
            )
        service, db = path[0], int(path[1]) if len(path) > 1 else 0
        password = _password(parts.netloc)
        sentinel = Sentinel(_hosts(parts.netloc, 26379), sentinel_kwargs=TIMEOUTS, **TIMEOUTS)
        return sentinel.master_for(service, db=db, password=password)
    if parts.scheme == "redis+cluster":
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, 6379)]
        return RedisCluster(startup_nodes=nodes, password=_password(parts.netloc), **TIMEOUTS)
    return redis.Redis.from_url(url, health_check_interval=30, **TIMEOUTS)


class RedisStore:
    """Keys are namespaced; every write carries a TTL; `take` is GETDEL (one round trip, atomic)."""

    def __init__(self, client: redis.Redis | RedisCluster, namespace: str = "broker:"):
        self._redis = client
        self._ns = namespace
        self._incr = client.register_script(_INCR_WITH_TTL)
        self._log_append = client.register_script(_LOG_APPEND)
        self._log_recent = client.register_script(_LOG_RECENT)
        self._cluster = isinstance(client, RedisCluster)

    @classmethod
    def from_url(cls, url: str, namespace: str = "broker:") -> RedisStore:
        return cls(client_from_url(url), namespace)

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
        if not keys:
            return []
        # a cluster spreads the keys over its nodes: one MGET per node instead of one in all
        return self._call("mget_nonatomic" if self._cluster else "mget", [self._ns + key for key in keys])

    def take(self, key: str) -> bytes | None:
        return self._call("getdel", self._ns + key)

    def delete(self, key: str) -> None:
        self._call("delete", self._ns + key)

    def incr(self, key: str, ttl: int) -> int:
        try:
            return int(self._incr(keys=[self._ns + key], args=[ttl]))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis incr failed: {exc}") from exc

    def log_append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        try:
            self._log_append(keys=[self._ns + key], args=[value, max_entries, ttl])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis log append failed: {exc}") from exc

    def log_recent(self, key: str, count: int, *, ttl: int) -> list[bytes]:
        try:
            return list(self._log_recent(keys=[self._ns + key], args=[count, ttl]))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis log read failed: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False
