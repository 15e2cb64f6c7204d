"""The Redis store writes capped-log entries in batches (one round trip for many logins' entries), and a
reader in the same process always sees its own entries; another process sees them within LINGER."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from broker.errors import StoreUnavailable
from broker.store import log_batches
from broker.store.log_batches import LINGER, LogBatches
from broker.store.redis import RedisStore

pytestmark = pytest.mark.redis


def script_calls(url: str) -> int:
    """EVALSHA calls the server has answered (the commands a script runs are counted on their own)."""
    return int(redis.Redis.from_url(url).info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_entries_appended_together_share_one_round_trip(redis_url):
    store = RedisStore.from_url(redis_url, namespace="batches:")
    store.ping()  # connections made before counting
    watcher = redis.Redis.from_url(redis_url)
    before = script_calls(redis_url)
    for i in range(50):
        store.log_append("activity", f"e{i}".encode(), max_entries=100, ttl=60)
    deadline = time.monotonic() + 20 * LINGER
    while watcher.xlen("batches:activity") < 50:  # written by the writer thread, not by a read of ours
        assert time.monotonic() < deadline, "the batch was not written within 20 × LINGER"
        time.sleep(LINGER / 5)
    writes = script_calls(redis_url) - before
    assert 1 <= writes <= 2, (
        f"{writes} round trips for 50 entries"
    )  # one batch (two if the thread woke early)
    assert store.log_recent("activity", 3, ttl=60) == [b"e49", b"e48", b"e47"]  # in their order


def test_a_reader_in_the_same_process_sees_its_entries_at_once(redis_url):
    store = RedisStore.from_url(redis_url, namespace="own:")
    store.log_append("activity", b"mine", max_entries=10, ttl=60)
    assert store.log_recent("activity", 10, ttl=60) == [b"mine"]


def test_a_failed_write_drops_that_batch_with_a_warning_and_the_next_goes_through(caplog):
    attempts: list[list[bytes]] = []

    def write(key, max_entries, ttl, values):
        attempts.append(values)
        if len(attempts) == 1:
            raise StoreUnavailable("redis log append failed: connection refused")

    batches = LogBatches(write)
    batches.append("activity", b"lost", max_entries=10, ttl=60)
    batches.flush()
    batches.append("activity", b"kept", max_entries=10, ttl=60)
    batches.flush()
    assert attempts == [[b"lost"], [b"kept"]]
    assert "1 entries not recorded: redis log append failed" in caplog.text


def test_entries_beyond_the_queue_cap_are_dropped_and_counted(monkeypatch):
    gate = threading.Event()
    written: list[bytes] = []
    monkeypatch.setattr(log_batches, "MAX_QUEUED", 5)
    batches = LogBatches(lambda key, max_entries, ttl, values: (gate.wait(5), written.extend(values)))
    for i in range(8):  # the writer thread is held at the gate: nothing leaves the queue meanwhile
        batches.append("activity", f"e{i}".encode(), max_entries=100, ttl=60)
    gate.set()
    batches.flush()
    deadline = time.monotonic() + 2
    while len(written) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches.dropped == 3 and sorted(written) == [f"e{i}".encode() for i in range(5)]
