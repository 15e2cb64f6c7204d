"""Both store implementations keep the same promises: TTLs, add-if-absent, take-once."""

from __future__ import annotations

import threading
import time

import pytest

from broker.store.memory import MemoryStore
from broker.store.redis import RedisStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    url = request.getfixturevalue("redis_url")
    return RedisStore.from_url(url, namespace=f"test:{request.node.name}:")


def test_put_get_delete(store):
    store.put("k", b"v", 60)
    assert store.get("k") == b"v"
    store.delete("k")
    assert store.get("k") is None


def test_add_only_when_absent(store):
    assert store.add("replay", b"1", 60) is True
    assert store.add("replay", b"2", 60) is False
    assert store.get("replay") == b"1"


def test_claim_keeps_the_first_value_and_renews_only_the_same_value(store):
    assert store.claim("first", b"entra", 1) is None  # absent: stored
    assert store.claim("first", b"okta", 60) == b"entra"  # another value: left alone, not renewed
    assert store.claim("again", b"entra", 1) is None
    assert store.claim("again", b"entra", 60) == b"entra"  # the same value: its TTL is renewed
    time.sleep(1.1)
    assert store.get("first") is None
    assert store.get("again") == b"entra"


def test_take_returns_the_value_once(store):
    store.put("pending", b"request", 60)
    assert store.take("pending") == b"request"
    assert store.take("pending") is None


def test_take_is_atomic_under_concurrency(store):
    store.put("pending", b"request", 60)
    winners = []

    def race():
        if store.take("pending") is not None:
            winners.append(1)

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners == [1]


def test_keys_expire(store):
    store.put("short", b"v", 1)
    assert store.get("short") == b"v"
    time.sleep(1.1)
    assert store.get("short") is None
    assert store.add("short", b"again", 1) is True


def test_ping(store):
    assert store.ping() is True


def test_memory_store_sweeps_expired_keys_so_memory_stays_bounded():
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(1000):
        store.put(f"k{i}", b"v", 10)
    assert len(store) == 1000
    clock.now += 11
    store.put("fresh", b"v", 10)
    assert len(store) == 1


def test_redis_store_reports_unavailable_rather_than_crashing():
    from broker.errors import StoreUnavailable

    dead = RedisStore.from_url("redis://127.0.0.1:1/0")
    assert dead.ping() is False
    with pytest.raises(StoreUnavailable):
        dead.get("x")


def test_incr_counts_within_a_window_and_expires(store):
    assert [store.incr("hits", 1) for _ in range(3)] == [1, 2, 3]
    time.sleep(1.1)
    assert store.incr("hits", 1) == 1


def test_get_many_in_one_call(store):
    store.put("a", b"1", 60)
    store.put("c", b"3", 60)
    assert store.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
    assert store.get_many([]) == []


def test_consume_takes_the_pending_login_and_writes_the_replay_entry_once(store):
    now = time.time()
    store.put("login:r1", b"pending", 60)
    assert store.consume("assertion:a", 60, pending_key="login:r1", issued_at=now) == "ok"
    assert store.get("login:r1") is None
    assert store.consume("assertion:a", 60, pending_key=None, issued_at=now) == "replay"
    assert store.consume("assertion:b", 60, pending_key="login:r1", issued_at=now) == "pending_gone"
    assert store.consume("assertion:b", 60, pending_key=None, issued_at=now) == "ok"  # b was not written


def test_consume_refuses_an_idp_initiated_assertion_issued_before_the_epoch(store):
    epoch = store.epoch()
    assert epoch <= time.time()
    assert store.epoch() == epoch  # written once
    assert store.consume("assertion:old", 60, pending_key=None, issued_at=epoch - 1) == "before_epoch"
    # bound to a pending login, the login itself guarantees one use: the epoch does not matter
    store.put("login:r", b"pending", 60)
    assert store.consume("assertion:old", 60, pending_key="login:r", issued_at=epoch - 1) == "ok"


def test_concurrent_consumes_of_one_pending_login_let_exactly_one_through(store):
    store.put("login:race", b"pending", 60)
    results = []

    def race(n: int):
        results.append(store.consume(f"assertion:{n}", 60, pending_key="login:race", issued_at=time.time()))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count("ok") == 1 and results.count("pending_gone") == 19


def test_memory_store_has_no_durability_findings():
    durability = MemoryStore().durability()
    assert durability.ok and not durability.warnings and durability.persistence == "process"


@pytest.mark.redis
def test_redis_durability_fails_an_evicting_policy_and_warns_without_persistence(redis_url):
    import redis

    store = RedisStore.from_url(redis_url, namespace="test:durability:")
    direct = redis.Redis.from_url(redis_url)
    before = direct.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        found = store.durability()  # the fixture's server: --save "" --appendonly no
        assert found.ok and found.persistence == "none" and found.eviction_policy == "noeviction"
        assert any("appendonly" in w for w in found.warnings)
        for policy in ("allkeys-lru", "volatile-ttl", "volatile-lfu"):
            direct.config_set("maxmemory-policy", policy)
            found = store.durability()
            assert not found.ok and policy in found.errors[0]
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("appendonly", "yes")
        found = store.durability()
        assert found.ok and found.persistence == "aof" and not found.warnings
    finally:
        direct.config_set("maxmemory-policy", before)
        direct.config_set("appendonly", "no")


def test_log_keeps_the_newest_entries_up_to_the_cap(store):
    for i in range(7):
        store.log_append("activity", f"e{i}".encode(), max_entries=5, ttl=60)
    assert store.log_recent("activity", 100, ttl=60) == [b"e6", b"e5", b"e4", b"e3", b"e2"]
    assert store.log_recent("activity", 2, ttl=60) == [b"e6", b"e5"]
    assert store.log_recent("nothing-here", 10, ttl=60) == []


def append_now(store, key: str, value: bytes, *, max_entries: int, ttl: int) -> None:
    """log_append, then a read: Redis writes entries in batches, and an entry's age counts from its write."""
    store.log_append(key, value, max_entries=max_entries, ttl=ttl)
    store.log_recent(key, 1, ttl=ttl)


def test_log_entries_are_dropped_after_their_ttl(store):
    append_now(store, "activity", b"old", max_entries=10, ttl=1)
    time.sleep(0.6)
    append_now(store, "activity", b"new", max_entries=10, ttl=1)
    assert store.log_recent("activity", 10, ttl=1) == [b"new", b"old"]
    time.sleep(0.6)  # "old" is now 1.2 s old, "new" 0.6 s
    assert store.log_recent("activity", 10, ttl=1) == [b"new"]
    time.sleep(0.6)
    assert store.log_recent("activity", 10, ttl=1) == []


def test_log_entries_past_a_shorter_retention_are_dropped_on_read(store):
    """Lowering the retention in the configuration removes what is now too old at the next read."""
    append_now(store, "activity", b"a", max_entries=10, ttl=3600)
    time.sleep(1.1)
    assert store.log_recent("activity", 10, ttl=1) == []
    assert store.log_recent("activity", 10, ttl=3600) == []  # dropped, not hidden


def test_memory_log_expiry_follows_the_store_clock():
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.log_append("activity", b"a", max_entries=10, ttl=100)
    clock.now += 50
    store.log_append("activity", b"b", max_entries=10, ttl=100)
    clock.now += 51
    assert store.log_recent("activity", 10, ttl=100) == [b"b"]
    clock.now += 50
    assert store.log_recent("activity", 10, ttl=100) == []


def test_incr_and_get_counts_and_reads_in_one_call(store):
    store.put("pending", b"request", 60)
    assert store.incr_and_get("hits", 60, "pending") == (1, b"request")
    assert store.incr_and_get("hits", 60, "absent") == (2, None)
    assert store.incr("hits", 60) == 3  # the same counter incr counts on
    assert store.get("pending") == b"request"  # read, not taken


def test_incr_and_get_starts_the_counters_window_on_the_first_hit(store):
    store.incr_and_get("window", 1, "anything")
    time.sleep(1.1)
    assert store.incr_and_get("window", 1, "anything") == (1, None)  # a new window, counting from 1


def test_put_many_writes_each_key_with_its_own_ttl(store):
    store.put_many([("short", b"1", 1), ("long", b"2", 60)])
    assert store.get_many(["short", "long"]) == [b"1", b"2"]
    time.sleep(1.1)
    assert store.get_many(["short", "long"]) == [None, b"2"]
