"""Bulkhead and circuit breaker: a full bulkhead and an open circuit refuse at once; a trial call after the
cool-down closes or re-opens the circuit."""

from __future__ import annotations

import threading

import pytest

from broker.clients import guard as guard_module
from broker.clients.guard import ServiceGuard, ServiceRefused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(guard: ServiceGuard, times: int) -> None:
    for _ in range(times):
        with pytest.raises(TimeoutError), guard.attempt():
            raise TimeoutError("no answer")  # one attempt: the circuit counts whole calls
        guard.record("timeout")  # the call failed, after its retries


def test_a_full_bulkhead_refuses_at_once():
    guard = ServiceGuard("learnupon:acme", max_concurrent=2)
    inside, release = threading.Barrier(3), threading.Event()

    def hold():
        with guard.attempt():
            inside.wait()
            release.wait()

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    inside.wait()
    with pytest.raises(ServiceRefused) as refused:
        with guard.attempt():
            pass
    assert refused.value.reason == "bulkhead_full"
    assert guard.status().in_flight == 2
    release.set()
    for thread in holders:
        thread.join()
    with guard.attempt():
        pass
    assert guard.status().refused == {"bulkhead_full": 1}


def test_the_circuit_opens_after_n_failures_in_a_row_and_a_trial_after_the_cooldown_closes_it():
    clock = Clock()
    guard = ServiceGuard("graph:contoso", failures_to_open=3, cooldown=30, clock=clock)
    fail(guard, 2)
    with guard.attempt():
        pass
    guard.record(None)  # a call answered: the count starts again
    fail(guard, 3)
    assert guard.status().state == "open" and guard.status().retry_in == 30
    with pytest.raises(ServiceRefused) as refused, guard.attempt():
        pass
    assert refused.value.reason == "circuit_open" and "3 failures" in str(refused.value)
    clock.now += 30
    assert guard.status().state == "half-open"
    with guard.attempt():
        pass
    assert guard.status().state == "closed" and guard.status().consecutive_failures == 0


def test_a_failed_trial_reopens_the_circuit_and_only_one_trial_runs_at_a_time():
    clock = Clock()
    guard = ServiceGuard("learnupon:acme", failures_to_open=1, cooldown=10, clock=clock)
    fail(guard, 1)
    clock.now += 10
    with guard.attempt() as trial:
        with pytest.raises(ServiceRefused):  # a second call while the trial is under way
            with guard.attempt():
                pass
        trial.failed("HTTP 503")
    assert guard.status().state == "open" and guard.status().last_failure == "HTTP 503"


def test_the_process_limit_keeps_a_thread_free_over_all_services():
    guard_module.set_process_limit(1)
    try:
        first, second = ServiceGuard("learnupon:a"), ServiceGuard("learnupon:b")
        with first.attempt():
            with pytest.raises(ServiceRefused, match="outside calls already in flight"), second.attempt():
                pass
        with second.attempt():
            pass
    finally:
        guard_module.set_process_limit(None)


def test_failed_attempts_that_a_retry_makes_good_do_not_count():
    guard = ServiceGuard("learnupon:acme", failures_to_open=2)
    for _ in range(5):
        with pytest.raises(ConnectionError), guard.attempt():
            raise ConnectionError("reset")
    guard.record(None)
    assert guard.status().state == "closed" and guard.status().consecutive_failures == 0
