"""Latencies under faults next to steady state: gunicorn (the project's deploy/gunicorn.conf.py, gthread) with a
private Redis, the fake LearnUpon and the fake Graph on loopback, full browser logins (GET /login → the test
IdP's signed answer → POST /saml/acs, every login a new user, so provisioning and group lookups do real work)
and a /healthz prober in its own process (every 50 ms, a new connection each), phase after phase:

  steady             every service answers
  learnupon slow     every LearnUpon API call takes 1 s (provisioning budget 2 s, `continue`)
  learnupon hangs    every LearnUpon API call takes 30 s (the deadline, bulkhead and circuit breaker decide)
  graph down         Microsoft Graph answers 503 (group names from the cache; nothing removed)
  redis frozen       redis-server stopped with SIGSTOP for the phase (the store's bulkhead: at most threads − 1
                     requests wait on it, the others answer 503 at once; health stays up)

    python bench/faults.py [--seconds 6] [--browsers 6] [--workers 1] [--threads 4]
    python bench/faults.py --shapes      # steady and "learnupon hangs" for several workers x threads shapes
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from broker.demo.fake_graph import create_fake_graph  # noqa: E402
from broker.demo.learnupon_api import create_app  # noqa: E402
from broker.demo.learnupon_state import LearnUponState  # noqa: E402
from broker.demo.webserver import BackgroundServer  # noqa: E402
from broker.keys import generate_key_pair  # noqa: E402
from tests.faults.broker_process import full_login, gunicorn_broker, new_user  # noqa: E402
from tests.faults.processes import Prober, RedisProcess  # noqa: E402
from tests.harness import ALEX, TENANT, Keys, base_config  # noqa: E402

GRAPH_CLIENT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
ENV = {"BENCH_LU_USER": "api-user", "BENCH_LU_KEY": "api-key", "BENCH_GRAPH_SECRET": "graph-secret"}


def make_keys(folder: Path) -> Keys:
    pairs = {n: generate_key_pair(folder / f"{n}.key", folder / f"{n}.crt", n)
             for n in ("broker", "portal", "idp", "idp-next", "attacker", "okta")}  # fmt: skip
    return Keys(folder, pairs["broker"], pairs["portal"], pairs["idp"], pairs["idp-next"], pairs["attacker"],
                pairs["okta"])  # fmt: skip


def config(keys: Keys, redis_url: str, lu_url: str, graph_url: str) -> dict:
    data = base_config(keys)
    data["store"] = {"url": redis_url}
    data["upstreams"]["entra"]["groups"] = {
        "on_unresolved": "drop", "budget_seconds": 1.0,
        "graph": {"tenant_id": TENANT, "client_id": GRAPH_CLIENT, "client_secret_env": "BENCH_GRAPH_SECRET",
                  "login_base": graph_url, "graph_base": graph_url},
    }  # fmt: skip
    data["portals"]["academy"]["provisioning"] = {
        "enabled": True, "base_url": lu_url, "username_env": "BENCH_LU_USER", "password_env": "BENCH_LU_KEY",
        "on_failure": "continue", "budget_seconds": 2.0, "managed_group_patterns": ["LU-*"],
    }  # fmt: skip
    data["broker"]["outbound"] = {"failures_to_open": 5, "cooldown_seconds": 30}
    return data


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def run_phase(base: str, keys: Keys, seconds: float, browsers: int) -> dict:
    stop = threading.Event()
    logins: list[tuple[int, float]] = []
    counter = iter(range(10**9))

    def browser() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = full_login(base, keys, new_user(f"b{next(counter)}")).status_code
            except requests.RequestException:
                status = 0
            logins.append((status, time.monotonic() - started))
            time.sleep(0.05)  # a browser between two logins

    threads = [threading.Thread(target=browser) for _ in range(browsers)]
    for thread in threads:
        thread.start()
    # the probe runs in its own process (as Docker's does): its latencies are the broker's, not this process's
    # GIL, busy signing the browsers' logins
    health = [seconds for _, seconds in Prober(base + "/healthz", seconds=seconds).results()]
    stop.set()
    for thread in threads:
        thread.join()
    seconds_list = [s for _, s in logins]
    return {
        "logins": len(logins), "ok": sum(1 for s, _ in logins if s == 200),
        "503": sum(1 for s, _ in logins if s == 503),
        "p50": pct(seconds_list, 0.5), "p99": pct(seconds_list, 0.99), "max": max(seconds_list, default=0) * 1000,
        "h50": pct(health, 0.5), "h99": pct(health, 0.99), "hmax": max(health, default=0) * 1000,
    }  # fmt: skip


def row(name: str, r: dict) -> str:
    return (f"{name:<18} {r['logins']:>6} {r['ok']:>5} {r['503']:>5} {r['p50']:>8.0f} {r['p99']:>8.0f} "
            f"{r['max']:>8.0f} {r['h50']:>8.1f} {r['h99']:>8.1f} {r['hmax']:>8.1f}")  # fmt: skip


HEADER = (f"{'phase':<18} {'logins':>6} {'200':>5} {'503':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'hz p50':>8} {'hz p99':>8} {'hz max':>8}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--browsers", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--shapes", action="store_true")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("bench/faults.py needs redis-server (apt-get install redis-server)")
    os.environ.update(ENV)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fakes' access logs
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    keys = make_keys(folder)
    lu = LearnUponState("academy", api_username="api-user", api_password="api-key")
    graph_app = create_fake_graph(TENANT, GRAPH_CLIENT, "graph-secret", {ALEX.groups[0]: "LU-Sales"})
    graph = graph_app.extensions["fake_graph"]
    redis_proc = RedisProcess(folder)
    try:
        with BackgroundServer(create_app(lu)) as lu_server, BackgroundServer(graph_app) as graph_server:
            data = config(keys, redis_proc.url, lu_server.url + "/api/v1/", graph_server.url)
            shapes = [(1, 4), (1, 8), (2, 4)] if args.shapes else [(args.workers, args.threads)]
            for workers, threads in shapes:
                print(f"\ngunicorn gthread, {workers} worker(s) x {threads} threads; {args.browsers} browsers, "
                      f"{args.seconds:g} s a phase; login and /healthz (hz) latencies in ms")  # fmt: skip
                print(HEADER)
                phase_folder = folder / f"w{workers}t{threads}"
                phase_folder.mkdir()
                with gunicorn_broker(phase_folder, data, ENV, workers=workers, threads=threads) as base:
                    phases = [("steady", None), ("learnupon slow", lambda: lu.delay(1.0)),
                              ("learnupon hangs", lambda: lu.delay(30.0))]  # fmt: skip
                    if not args.shapes:
                        phases += [("graph down", lambda: graph.fail_next(10**6, status=503)),
                                   ("redis frozen", redis_proc.freeze)]  # fmt: skip
                    for name, fault in phases:
                        if fault is not None:
                            fault()
                        print(row(name, run_phase(base, keys, args.seconds, args.browsers)), flush=True)
                        lu.clear_faults()
                        graph.reset()
                        redis_proc.thaw()
                        time.sleep(1.0)
    finally:
        redis_proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
