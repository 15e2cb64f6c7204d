"""A hanging LearnUpon, seen from outside: gunicorn (1 worker x 4 threads) under a stream of first logins.
/healthz keeps answering at once, every login ends by its deadline, and the circuit opens and says so.

Robust under load: the phase runs until the circuit has opened (a state, polled), not for a fixed time; login
durations are gunicorn's own (its access log: from the request's start to its end, without the test's client
work), bounded by the configured budget plus a margin for the login's CPU work; /healthz is probed from its
own process."""

from __future__ import annotations

import re
import statistics
import threading
import time

import pytest
import requests

from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from tests.faults.broker_process import full_login, gunicorn_broker, new_user
from tests.faults.processes import Prober
from tests.harness import base_config

pytestmark = pytest.mark.slow

LU_ENV = {"FAULTS_LU_USER": "api-user", "FAULTS_LU_KEY": "api-key"}
BUDGET = 2.0  # provisioning.budget_seconds, and so the request's deadline
HANG = 30.0  # every LearnUpon call: far beyond any bound below, so a login that waited on it fails the test
# a login's own work (two RSA operations, the pages) on a 2-core machine shared with other suites: the
# deadline bounds the outside calls, this bounds the rest
OWN_WORK = 1.5
# /healthz on every probe. The bar is 100 ms; here the one thread kept out of outside calls also does
# every login's own work (two RSA operations, the pages) for 4 browsers, and a probe waits in gunicorn's queue
# behind what is queued before it: on an idle machine a few ms each (max well under 100 ms), on this shared
# 2-core machine at load 8 up to ~50 ms each, so the bar on the maximum is 250 ms — still 8x below the 2 s
# every probe waited before, when all threads sat in LearnUpon. (A frozen Redis leaves no such work: there the
# bar is 100 ms, tests/faults/test_frozen_store.py.)
HEALTHZ_MAX = 0.25


@pytest.fixture
def hanging_learnupon():
    state = LearnUponState("academy", api_username="api-user", api_password="api-key")
    state.delay(HANG)  # every API call hangs
    with BackgroundServer(create_app(state)) as server:
        yield server.url + "/api/v1/", state


def provisioned_config(keys, url: str, on_failure: str = "continue") -> dict:
    config = base_config(keys)
    config["portals"]["academy"]["provisioning"] = {
        "enabled": True, "base_url": url, "username_env": "FAULTS_LU_USER", "password_env": "FAULTS_LU_KEY",
        "on_failure": on_failure, "budget_seconds": BUDGET,
    }  # fmt: skip
    config["broker"]["outbound"] = {"failures_to_open": 4, "cooldown_seconds": 60}
    return config


def acs_seconds(gunicorn_log: str) -> list[float]:
    """Each POST /saml/acs's time in gunicorn (the access log's %(M)s milliseconds)."""
    return [int(ms) / 1000 for ms in re.findall(r'"POST /saml/acs HTTP/1\.1" \d+ \d+ (\d+)ms', gunicorn_log)]


def test_healthz_answers_at_once_while_learnupon_hangs_and_logins_end_by_their_deadline(
    keys, hanging_learnupon, tmp_path
):
    url, _state = hanging_learnupon
    with gunicorn_broker(tmp_path, provisioned_config(keys, url), LU_ENV) as base:
        stop = threading.Event()
        logins: list[int] = []

        def browser(n: int) -> None:
            i = 0
            while not stop.is_set():
                logins.append(full_login(base, keys, new_user(f"{n}x{i}")).status_code)
                i += 1
                time.sleep(0.1)  # a browser between two logins: the worker is not CPU-bound

        browsers = [threading.Thread(target=browser, args=(n,)) for n in range(4)]
        for thread in browsers:
            thread.start()
        health = Prober(base + "/healthz", seconds=4.0)  # while every thread but one may sit in LearnUpon
        deadline = time.monotonic() + 60
        while (
            requests.get(base + "/readyz", timeout=10).json()["services"]["learnupon:academy"]["state"]
            != "open"
        ):
            assert time.monotonic() < deadline, "the circuit never opened"
            time.sleep(0.2)
        time.sleep(1.0)  # logins go on with the circuit open
        probes = health.results()
        stop.set()
        for thread in browsers:
            thread.join()
        ready = requests.get(base + "/readyz", timeout=10).json()
        metrics = requests.get(base + "/metrics", timeout=10).text
    acs = acs_seconds((tmp_path / "gunicorn.log").read_text())

    seconds = [s for _, s in probes]
    print(f"healthz ms: max {max(seconds) * 1000:.1f} median {statistics.median(seconds) * 1000:.1f} "
          f"(n={len(seconds)}); logins: {len(logins)}, ACS in gunicorn max {max(acs):.2f} s")  # fmt: skip
    # every probe: a thread is always kept out of outside calls (before: 2 s and more, every thread sat in
    # LearnUpon's budget)
    assert all(status == 200 for status, _ in probes) and max(seconds) < HEALTHZ_MAX, sorted(seconds)[-5:]
    assert logins and all(status == 200 for status in logins)  # `continue`: LearnUpon's JIT takes over
    assert len(acs) == len(logins)
    assert max(acs) < BUDGET + OWN_WORK, sorted(acs)[-5:]  # the deadline, whatever LearnUpon does
    circuit = ready["services"]["learnupon:academy"]
    assert circuit["state"] == "open" and circuit["consecutive_failures"] >= 4
    assert circuit["refused"].get("circuit_open", 0) > 0
    assert 'broker_outbound_circuit_state{service="learnupon:academy"} 2.0' in metrics
