"""A hanging LearnUpon, seen from outside: gunicorn (1 worker x 4 threads) under a stream of first logins.
/healthz keeps answering at once, every login ends by its deadline, and the circuit opens and says so."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import requests

from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from tests.faults.broker_process import full_login, gunicorn_broker, new_user
from tests.harness import base_config

pytestmark = pytest.mark.slow

LU_ENV = {"FAULTS_LU_USER": "api-user", "FAULTS_LU_KEY": "api-key"}


@pytest.fixture
def hanging_learnupon():
    state = LearnUponState("academy", api_username="api-user", api_password="api-key")
    state.delay(30.0)  # every API call hangs
    with BackgroundServer(create_app(state)) as server:
        yield server.url + "/api/v1/", state


def provisioned_config(keys, url: str, on_failure: str = "continue") -> dict:
    config = base_config(keys)
    config["portals"]["academy"]["provisioning"] = {
        "enabled": True, "base_url": url, "username_env": "FAULTS_LU_USER", "password_env": "FAULTS_LU_KEY",
        "on_failure": on_failure, "budget_seconds": 2.0,
    }  # fmt: skip
    config["broker"]["outbound"] = {"failures_to_open": 4, "cooldown_seconds": 60}
    return config


def test_healthz_answers_at_once_while_learnupon_hangs_and_logins_end_by_their_deadline(
    keys, hanging_learnupon, tmp_path
):
    url, _state = hanging_learnupon
    with gunicorn_broker(tmp_path, provisioned_config(keys, url), LU_ENV) as base:
        stop = threading.Event()
        logins: list[tuple[int, float]] = []

        def browser(n: int) -> None:
            i = 0
            while not stop.is_set():
                started = time.monotonic()
                reply = full_login(base, keys, new_user(f"{n}x{i}"))
                logins.append((reply.status_code, time.monotonic() - started))
                i += 1
                time.sleep(0.1)  # a browser between two logins: the worker is not CPU-bound

        browsers = [threading.Thread(target=browser, args=(n,)) for n in range(4)]
        for thread in browsers:
            thread.start()
        health: list[float] = []
        until = time.monotonic() + 5.0
        while time.monotonic() < until:
            started = time.monotonic()
            assert requests.get(base + "/healthz", timeout=10).status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.05)
        stop.set()
        for thread in browsers:
            thread.join()
        ready = requests.get(base + "/readyz", timeout=10).json()
        metrics = requests.get(base + "/metrics", timeout=10).text

    print(f"healthz ms: max {max(health) * 1000:.1f} median {statistics.median(health) * 1000:.1f} "
          f"(n={len(health)}); logins: {len(logins)}, max {max(s for _, s in logins):.2f} s")  # fmt: skip
    # A thread is always kept out of outside calls, so /healthz waits only for CPU: on a loaded 2-core
    # machine a few probes still take ~100 ms, so the bar is on the 90th percentile (before: 2 s and more,
    # every thread sat in LearnUpon's budget).
    assert sorted(health)[int(len(health) * 0.9)] < 0.1 and max(health) < 1.0, sorted(health)[-5:]
    assert all(status == 200 for status, _ in logins)  # `continue`: LearnUpon's JIT takes over
    assert max(seconds for _, seconds in logins) < 2.0 + 1.0  # the 2 s budget, plus the login's own work
    circuit = ready["services"]["learnupon:academy"]
    assert circuit["state"] == "open" and circuit["consecutive_failures"] >= 4
    assert circuit["refused"].get("circuit_open", 0) > 0
    assert 'broker_outbound_circuit_state{service="learnupon:academy"} 2.0' in metrics
