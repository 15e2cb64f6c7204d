"""The store's bulkhead with real threads: at most `limit` calls in flight; a call that finds every slot held by
calls stalled past STALLED_AFTER fails at once, one behind quick calls waits for a slot."""

from __future__ import annotations

import threading
import time

import pytest

from broker.errors import StoreUnavailable
from broker.store.bulkhead import STALLED_AFTER, WAIT_FOR_SLOT, StoreBulkhead


def hold(bulkhead: StoreBulkhead, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """A call in another thread that keeps its slot for `seconds`; the event is set once it holds it."""
    holding = threading.Event()

    def call() -> None:
        with bulkhead.slot("get"):
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=call)
    thread.start()
    assert holding.wait(5)
    return thread, holding


def test_a_call_behind_stalled_calls_fails_at_once_and_says_why():
    bulkhead = StoreBulkhead(limit=2)
    threads = [hold(bulkhead, STALLED_AFTER + 1.0)[0] for _ in range(2)]
    time.sleep(STALLED_AFTER + 0.1)
    assert bulkhead.stalled()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="store busy: 2 calls already waiting on it"):
        with bulkhead.slot("set"):
            pass
    assert time.monotonic() - started < WAIT_FOR_SLOT  # stalled: no wait for a slot
    assert bulkhead.refused == 1
    for thread in threads:
        thread.join()
    assert not bulkhead.stalled()
    with bulkhead.slot("set"):  # the slots are free again
        pass


def test_a_call_behind_quick_calls_waits_for_its_slot():
    bulkhead = StoreBulkhead(limit=1)
    thread, _ = hold(bulkhead, WAIT_FOR_SLOT / 4)
    with bulkhead.slot("get"):  # not stalled: it waits the few ms for the slot
        pass
    thread.join()
    assert bulkhead.refused == 0


def test_without_a_limit_nothing_is_refused_but_a_stall_is_still_seen():
    bulkhead = StoreBulkhead()
    thread, _ = hold(bulkhead, STALLED_AFTER + 0.3)
    time.sleep(STALLED_AFTER + 0.1)
    assert bulkhead.stalled()
    with bulkhead.slot("get"):
        pass
    thread.join()
