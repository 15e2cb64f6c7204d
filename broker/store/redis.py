"""Redis store, for several broker replicas behind a load balancer.

One URL says which Redis: `redis://` / `rediss://` / `unix://` (one server or a managed endpoint),
`redis+sentinel://[:password@]host:26379[,host:26379…]/<service>[/<db>]` (Sentinel: the current master is
looked up and followed through failovers), or `redis+cluster://[:password@]host:6379[,host:6379…]` (Redis
Cluster). Every command touches one key except `consume`, one script over the epoch, the replay entry and the
pending login; on a cluster those live on different nodes, so there it runs as three one-key scripts.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from broker.errors import StoreUnavailable
from broker.store import EPOCH_KEY, ConsumeResult
from broker.store import redis_scripts as scripts
from broker.store.bulkhead import STORE_BULKHEAD
from broker.store.durability import Durability, judge
from broker.store.log_batches import LogBatches

log = logging.getLogger(__name__)

CONSUME_TRIES = 3  # a consume whose connection broke is tried again (same token), then the login gets a 503
TIMEOUTS: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
# /readyz's ping: its own small connection pool with a short timeout, so a frozen Redis makes it say "not
# ready" within this, whatever the request threads are waiting for
PROBE_TIMEOUT = 0.5


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
    # A pooled connection the server or a proxy dropped between commands fails the next command: retry such
    # a call once on a fresh connection (consume is written to be safe to retry; timeouts are not retried).
    return redis.Redis.from_url(
        url,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError],
        **TIMEOUTS,
    )


class RedisStore:
    """Keys are namespaced; every write carries a TTL; `take` is GETDEL (one round trip, atomic)."""

    def __init__(
        self, client: redis.Redis | RedisCluster, namespace: str = "broker:", probe: redis.Redis | None = None
    ):
        self._redis = client
        self._probe = probe or client
        self._probe_lock = threading.Lock()
        self._last_ping = True
        self._ns = namespace
        self._incr = client.register_script(scripts.INCR_WITH_TTL)
        self._incr_and_get = client.register_script(scripts.INCR_AND_GET)
        self._epoch_script = client.register_script(scripts.EPOCH)
        self._consume = client.register_script(scripts.CONSUME)
        self._add_once = client.register_script(scripts.ADD_ONCE)
        self._claim = client.register_script(scripts.CLAIM)
        self._log_append = client.register_script(scripts.LOG_APPEND)
        self._log_recent = client.register_script(scripts.LOG_RECENT)
        self._cluster = isinstance(client, RedisCluster)
        self._log_batches = LogBatches(self._write_log)
        self._seen_epoch: float | None = None  # the last epoch this process read: a missing one is a wipe

    @classmethod
    def from_url(cls, url: str, namespace: str = "broker:") -> RedisStore:
        probe = None
        if urlsplit(url).scheme in ("redis", "rediss", "unix"):
            short = {"socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT}
            probe = redis.Redis.from_url(url, max_connections=2, **short)
        return cls(client_from_url(url), namespace, probe)

    def _guarded(self, what: str, call: Any, *args, **kwargs) -> Any:
        """A request's store call: through the bulkhead, a Redis error reported as StoreUnavailable."""
        with STORE_BULKHEAD.slot(what):
            try:
                return call(*args, **kwargs)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis {what} failed: {exc}") from exc

    def _call(self, method: str, *args, **kwargs):
        return self._guarded(method, getattr(self._redis, method), *args, **kwargs)

    def _script(self, script: Any, what: str, keys: list[str], args: list[Any]) -> Any:
        return self._guarded(what, script, keys=keys, args=args)

    def stalled(self) -> bool:
        """True while a call to this process's store has waited far longer than Redis takes (frozen)."""
        return STORE_BULKHEAD.stalled()

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self._call("set", self._ns + key, value, ex=ttl)

    def put_many(self, items: list[tuple[str, bytes, int]]) -> None:
        self._guarded("put many", self._set_in_one_round_trip, items)

    def _set_in_one_round_trip(self, items: list[tuple[str, bytes, int]]) -> None:
        with self._redis.pipeline(transaction=False) as pipe:  # no MULTI; a cluster sends one per node
            for key, value, ttl in items:
                pipe.set(self._ns + key, value, ex=ttl)
            pipe.execute()

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self._call("set", self._ns + key, value, ex=ttl, nx=True))

    def claim(self, key: str, value: bytes, ttl: int) -> bytes | None:
        found = self._script(self._claim, "claim", [self._ns + key], [value, ttl])
        return found if isinstance(found, bytes) else None

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
        return int(self._script(self._incr, "incr", [self._ns + key], [ttl]))

    def incr_and_get(self, counter: str, ttl: int, key: str) -> tuple[int, bytes | None]:
        if self._cluster:  # the two keys live on different nodes: two round trips there
            return self.incr(counter, ttl), self.get(key)
        count, value = self._script(
            self._incr_and_get, "incr and get", [self._ns + counter, self._ns + key], [ttl]
        )
        return int(count), value if isinstance(value, bytes) else None

    def log_append(self, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
        self._log_batches.append(key, value, max_entries=max_entries, ttl=ttl)

    def _write_log(self, key: str, max_entries: int, ttl: int, values: list[bytes]) -> None:
        # outside the bulkhead: the batch writer is not a request thread, and must not take a request's slot
        try:
            self._log_append(keys=[self._ns + key], args=[max_entries, ttl, *values])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis log append failed: {exc}") from exc

    def log_recent(self, key: str, count: int, *, ttl: int) -> list[bytes]:
        # this process's own entries first, as a request's store call (a stalled store refuses it at once); when
        # the writer thread is in the middle of a slow write, read without waiting for it
        with STORE_BULKHEAD.slot("log write"):
            self._log_batches.flush(wait=PROBE_TIMEOUT)
        return list(self._script(self._log_recent, "log read", [self._ns + key], [count, ttl]))

    def ping(self) -> bool:
        """One PING on the probe connection (short timeout), never behind the request threads' calls: false at
        once while a call has waited longer than that timeout; while another ping is out, its last answer."""
        if STORE_BULKHEAD.stalled(over=PROBE_TIMEOUT):  # a ping would wait as long, and fail too
            return False
        if not self._probe_lock.acquire(blocking=False):
            return self._last_ping
        try:
            self._last_ping = bool(self._probe.ping())
        except redis.RedisError:
            self._last_ping = False
        finally:
            self._probe_lock.release()
        return self._last_ping

    def rq_connection(self) -> redis.Redis | None:
        """The connection background jobs (RQ) use: this Redis, or None on a cluster (RQ needs one node)."""
        return self._redis if isinstance(self._redis, redis.Redis) else None

    # ---- epoch and consume ---------------------------------------------------------------------------

    def _new_epoch(self, wipe_margin: float) -> str:
        # a wipe seen by a process that knew the old epoch: assertions issued up to the IdPs' clock tolerance
        # ahead of now may have been consumed just before it
        # whole seconds: IssueInstants usually have no fraction, and one issued in the epoch's second is new
        return str(int(time.time() + (wipe_margin if self._seen_epoch is not None else 0.0)))

    def _noticed(self, epoch: bytes | str, written: int) -> float:
        value = float(epoch)
        if written and self._seen_epoch is not None:
            log.warning(
                "store epoch was missing: Redis lost its data (restart without persistence, or a flush); "
                "refusing IdP-initiated responses issued before the new epoch %.0f", value,
            )  # fmt: skip
        self._seen_epoch = value
        return value

    def epoch(self) -> float:
        epoch, written = self._script(
            self._epoch_script, "epoch", [self._ns + EPOCH_KEY], [self._new_epoch(0.0)]
        )
        return self._noticed(epoch, written)

    def consume(
        self, replay_key: str, ttl: int, *, pending_key: str | None, issued_at: float, wipe_margin: float = 0
    ) -> ConsumeResult:
        token = secrets.token_hex(8)  # the same for every try of this call: a retry finds its own entry
        for attempt in range(CONSUME_TRIES):
            try:
                with STORE_BULKHEAD.slot("consume"):
                    return self._consume_once(replay_key, ttl, pending_key, issued_at, wipe_margin, token)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # the script may have run and only its answer been lost: running it again is safe
                if attempt + 1 == CONSUME_TRIES:
                    raise StoreUnavailable(f"redis consume failed: {exc}") from exc
                log.info("redis consume: %s; trying again", exc)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis consume failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _consume_once(
        self, replay_key: str, ttl: int, pending_key: str | None, issued_at: float, margin: float, token: str
    ) -> ConsumeResult:
        if self._cluster:
            return self._consume_on_cluster(replay_key, ttl, pending_key, issued_at, margin, token)
        keys = [self._ns + EPOCH_KEY, self._ns + replay_key]
        if pending_key is not None:
            keys.append(self._ns + pending_key)
        result, epoch, written = self._consume(
            keys=keys, args=[token, ttl, repr(issued_at), self._new_epoch(margin)]
        )
        self._noticed(epoch, written)
        return cast(ConsumeResult, result.decode() if isinstance(result, bytes) else result)

    def _consume_on_cluster(
        self, replay_key: str, ttl: int, pending_key: str | None, issued_at: float, margin: float, token: str
    ) -> ConsumeResult:
        epoch, written = self._epoch_script(keys=[self._ns + EPOCH_KEY], args=[self._new_epoch(margin)])
        if pending_key is None and issued_at < self._noticed(epoch, written):
            return "before_epoch"
        if not self._add_once(keys=[self._ns + replay_key], args=[token, ttl]):
            return "replay"
        if pending_key is not None and self._redis.getdel(self._ns + pending_key) is None:
            return "pending_gone"
        return "ok"

    # ---- durability -------------------------------------------------------------------------------------

    def durability(self) -> Durability:
        """Read appendonly, save and maxmemory-policy (CONFIG GET; INFO when CONFIG is renamed, as on some
        managed services). On a cluster, every primary must pass."""
        try:
            with STORE_BULKHEAD.slot("durability"):
                return judge(*self._settings())
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis durability check failed: {exc}") from exc

    def _settings(self) -> tuple[str | None, str | None, str | None]:
        nodes = cast(RedisCluster, self._redis).get_primaries() if self._cluster else [None]
        values = [self._node_settings(node) for node in nodes]
        # several primaries: the weakest answer counts
        appendonly = next((a for a, _, _ in values if a != "yes"), values[0][0])
        save = next((s for _, s, _ in values if not s), values[0][1])
        policy = next((p for _, _, p in values if p != "noeviction"), values[0][2])
        return appendonly, save, policy

    def _node_settings(self, node) -> tuple[str | None, str | None, str | None]:
        target = {"target_nodes": node} if node is not None else {}
        try:
            found = {}
            for name in ("appendonly", "save", "maxmemory-policy"):
                answer: dict[Any, Any] = self._redis.config_get(name, **target)
                found[name] = _text(answer.get(name, answer.get(name.encode())))
            return found["appendonly"], found["save"], found["maxmemory-policy"]
        except redis.ResponseError:  # CONFIG renamed or refused (managed services): INFO tells less
            persistence = self._redis.info("persistence", **target)
            memory = self._redis.info("memory", **target)
            aof = persistence.get("aof_enabled")
            return (
                None if aof is None else ("yes" if str(aof) == "1" else "no"),
                None,
                _text(memory.get("maxmemory_policy")),
            )


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
