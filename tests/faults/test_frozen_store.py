"""A frozen Redis (SIGSTOP: the port open, nothing answering), seen from outside: gunicorn (1 worker x 4
threads) under a stream of logins. At most threads − 1 request threads wait on the store (its bulkhead), the
rest answer 503 at once, /healthz keeps answering at once (bench/faults.py shows < 100 ms) and /readyz says "not ready" within its probe
timeout; thawed, logins work again without a restart."""

from __future__ import annotations

import threading
import time

import pytest

from broker.store.redis import PROBE_TIMEOUT
from tests.faults.broker_process import full_login, gunicorn_broker, new_user
from tests.faults.processes import Prober, probe
from tests.harness import base_config

pytestmark = [pytest.mark.slow, pytest.mark.redis]

# The figure (< 100 ms) is shown by bench/faults.py, not by a timed test (the team's rule: speed by
# benchmarks). On this shared 2-core machine a probe can be descheduled for ~0.5 s under load, so the test's bar
# on every probe (the maximum, not a percentile) is what the bulkhead changes: without it each /healthz waits
# behind the store's 2 s socket timeout (measured 3.96 s max), with it they answer in milliseconds.
HEALTHZ_MAX = 1.0


def test_healthz_answers_at_once_and_readyz_says_not_ready_while_redis_is_frozen(keys, redis_proc, tmp_path):
    config = base_config(keys, store__url=redis_proc.url)
    with gunicorn_broker(tmp_path, config) as base:
        assert full_login(base, keys, new_user()).status_code == 200
        stop = threading.Event()
        logins: list[tuple[str, int]] = []
        phase = ["before"]

        def browser(n: int) -> None:
            i = 0
            while not stop.is_set():
                try:
                    status = full_login(base, keys, new_user(f"f{n}x{i}")).status_code
                except OSError:
                    status = 0
                logins.append((phase[0], status))
                i += 1
                time.sleep(0.05)

        browsers = [threading.Thread(target=browser, args=(n,)) for n in range(4)]
        for thread in browsers:
            thread.start()
        time.sleep(1.0)
        redis_proc.freeze()
        phase[0] = "frozen"
        try:
            health = Prober(base + "/healthz", seconds=4.0)
            time.sleep(0.5)
            ready = [probe(base + "/readyz") for _ in range(5)]
            health_results = health.results()
        finally:
            redis_proc.thaw()
        phase[0] = "thawed"
        time.sleep(3.0)  # the stuck calls time out (2 s), the pool reconnects
        stop.set()
        for thread in browsers:
            thread.join()
        after = full_login(base, keys, new_user())

    seconds = [s for _, s in health_results]
    print(f"frozen Redis: healthz n={len(seconds)} max {max(seconds) * 1000:.1f} ms; readyz "
          f"{[(status, round(s * 1000)) for status, s in ready]}; logins {logins.count(('frozen', 503))} x 503 "
          f"while frozen")  # fmt: skip
    assert all(status == 200 for status, _ in health_results)
    assert max(seconds) < HEALTHZ_MAX, sorted(seconds)[-5:]
    # /readyz never waits behind the stuck threads: not ready, within its own probe's timeout
    assert all(status == 503 for status, _ in ready), ready
    assert max(s for _, s in ready) < PROBE_TIMEOUT + 0.5, ready
    frozen = [status for when, status in logins if when == "frozen"]
    assert frozen and set(frozen) <= {
        200,
        503,
    }  # a clear 503 (or a login that had its store calls done), never a 500
    assert frozen.count(503) >= 1
    assert after.status_code == 200  # back without a restart
