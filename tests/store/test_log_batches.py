"""The Redis store writes capped-log entries in batches (one round trip for many logins' entries), and a
reader in the same process always sees its own entries; another process sees them within LINGER."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest
import redis

from broker.errors import StoreUnavailable
from broker.store import log_batches
from broker.store.log_batches import LINGER, LogBatches
from broker.store.redis import RedisStore
from tests.store.round_trips import CountingConnection, counted_store

WRITER = "log-batches"  # the writer thread's name


def without_writer_thread(batches: LogBatches) -> LogBatches:
    """Entries stay queued until the test flushes (as if the writer thread were busy)."""
    batches._owner_pid = os.getpid()
    return batches


@pytest.mark.redis
def test_entries_appended_together_share_one_round_trip(redis_url):
    store = counted_store(redis_url, "batches:")
    watcher = redis.Redis.from_url(redis_url)
    CountingConnection.sent.clear()
    for i in range(50):
        store.log_append("activity", f"e{i}".encode(), max_entries=100, ttl=60)
    deadline = time.monotonic() + 200 * LINGER
    while watcher.xlen("batches:activity") < 50:  # written by the writer thread, not by a read of ours
        assert time.monotonic() < deadline, "the batch was not written within 200 × LINGER"
        time.sleep(LINGER / 5)
    scripts_sent_by = [thread for thread, sent in CountingConnection.sent if sent == "EVALSHA"]
    writes = scripts_sent_by.count(WRITER)
    assert 1 <= writes <= 2, (
        f"{writes} round trips for 50 entries"
    )  # one batch (two if the writer woke early)
    assert scripts_sent_by == [WRITER] * writes  # none from this (the request's) thread
    assert store.log_recent("activity", 3, ttl=60) == [b"e49", b"e48", b"e47"]  # in their order


@pytest.mark.redis
def test_a_reader_in_the_same_process_sees_its_entries_at_once(redis_url):
    store = RedisStore.from_url(redis_url, namespace="own:")
    store.log_append("activity", b"mine", max_entries=10, ttl=60)
    assert store.log_recent("activity", 10, ttl=60) == [b"mine"]


def test_after_a_failed_write_that_batch_is_dropped_with_a_warning_and_the_next_goes_through(caplog):
    attempts: list[list[bytes]] = []

    def write(key, max_entries, ttl, values):
        attempts.append(values)
        if len(attempts) == 1:
            raise StoreUnavailable("redis log append failed: connection refused")

    batches = without_writer_thread(LogBatches(write))
    batches.append("activity", b"lost", max_entries=10, ttl=60)
    batches.append("activity", b"lost too", max_entries=10, ttl=60)
    batches.flush()
    batches.append("activity", b"kept", max_entries=10, ttl=60)
    batches.flush()
    assert attempts == [[b"lost", b"lost too"], [b"kept"]]
    assert "2 entries not recorded: redis log append failed" in caplog.text


def test_a_reader_does_not_queue_behind_a_slow_write():
    started, release = threading.Event(), threading.Event()

    def slow_write(key, max_entries, ttl, values):
        started.set()
        release.wait(5)

    batches = without_writer_thread(LogBatches(slow_write))
    batches.append("activity", b"a", max_entries=10, ttl=60)
    writer = threading.Thread(target=batches.flush)
    writer.start()
    assert started.wait(5)
    began = time.monotonic()
    assert batches.flush(wait=0.1) is False  # gave up waiting: the read goes on without it
    assert time.monotonic() - began < 2
    release.set()
    writer.join(5)


def test_the_writer_thread_survives_an_unexpected_error(monkeypatch, caplog):
    written: list[bytes] = []

    def write(key, max_entries, ttl, values):
        if values == [b"odd"]:
            raise RuntimeError("a cluster slot moved")  # not a StoreUnavailable
        written.extend(values)

    batches = LogBatches(write)
    batches.append("activity", b"odd", max_entries=10, ttl=60)
    time.sleep(10 * LINGER)
    batches.append("activity", b"next", max_entries=10, ttl=60)
    deadline = time.monotonic() + 200 * LINGER
    while written != [b"next"]:
        assert time.monotonic() < deadline, f"the writer stopped: {written}"
        time.sleep(LINGER / 5)
    assert "1 entries not recorded: a cluster slot moved" in caplog.text


def test_entries_beyond_the_queue_cap_are_dropped_and_counted(monkeypatch):
    monkeypatch.setattr(log_batches, "MAX_QUEUED", 5)
    written: list[bytes] = []
    batches = without_writer_thread(LogBatches(lambda key, max_entries, ttl, values: written.extend(values)))
    for i in range(8):
        batches.append("activity", f"e{i}".encode(), max_entries=100, ttl=60)
    batches.flush()
    assert batches.dropped == 3 and written == [f"e{i}".encode() for i in range(5)]


def test_a_store_no_longer_used_takes_its_writer_thread_with_it(monkeypatch):
    monkeypatch.setattr(log_batches, "IDLE_CHECK", 0.05)
    before = set(threading.enumerate())
    batches = LogBatches(lambda *_: None)
    batches.append("activity", b"a", max_entries=10, ttl=60)
    (writer,) = [t for t in threading.enumerate() if t not in before and t.name == WRITER]
    del batches
    gc.collect()
    writer.join(5)
    assert not writer.is_alive(), "the writer thread outlived its store"
