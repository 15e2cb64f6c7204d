"""How a login's cost grows with what it carries, and what a worker holds after many logins.

Part 1, per-login CPU time (in-process, through the Flask app, memory store) against the floor (signxml verify
+ sign of the same documents, same run), for 1, 10 and 150 Entra groups (GUIDs named by a static map and sent
on to the portal; 150 is where Entra stops sending groups), and for responses grown to ~16, 64 and 200 KB by
an extra claim the broker reads but does not send on.

Part 2, memory: 10,000 logins in a fresh process (one worker's worth) with the in-memory store, and at the same
time in another with a private redis-server: RSS after 1,000 and after 10,000 logins, and the store's keys by kind. Nothing may
grow beyond the caches' bounds:
  login:      pending logins, consumed (deleted) by the ACS; the rest expire after broker.login_ttl_seconds
  assertion:  the replay cache, kept until the assertion's NotOnOrAfter + clock skew (Entra: 60 min + 3 min),
              so it holds at most the logins of the last ~hour
  rate:       per-client-IP counters, one per IP and endpoint for the current minute (TTL 61 s)
The memory store sweeps expired keys as time passes; Redis expires them itself.

    python bench/scaling.py [--logins 10000] [--skip-redis]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path

from common import (
    PORTAL,
    acs_form,
    bench_user,
    client_ip,
    config_dict,
    make_keys,
    median_ms,
    pending_from_location,
    prepare_logins,
    signed_response,
)
from login_cpu import floor_inputs, measure_floor, measure_logins, signxml_calls

from broker.app import create_app
from broker.config import config_from_dict

TIME_LIMIT = 110.0


def app_for(folder: Path, groups: int, store_url: str = "memory://"):
    return create_app(config_from_dict(config_dict(folder, store_url=store_url, groups=groups)))


def cost_of(app, keys, user, count: int, padding: int = 0) -> tuple[int, float, float]:
    """(response bytes, login median ms, floor median ms) for `count` logins of this shape."""
    measure_logins(app, prepare_logins(app, keys, user, 20, padding))  # warm-up
    prepared = prepare_logins(app, keys, user, count, padding)
    inputs, cert, key_pair = floor_inputs(app, keys, prepared, user)
    login: list[float] = []
    floor: list[float] = []
    calls = signxml_calls(cert, key_pair)
    for start in range(0, count, 25):
        login += measure_logins(app, prepared[start : start + 25])
        floor += measure_floor(inputs[start : start + 25], calls)
    return len(prepared[0][1]), median_ms(login), median_ms(floor)


def part_one(folder: Path, keys, count: int) -> None:
    print(
        "per-login CPU time (through the app, memory store; floor = signxml verify + sign of the same documents)"
    )
    print(f"  {'shape':<22} {'response':>9} {'login':>9} {'floor':>9} {'ratio':>6}")
    for groups in (1, 10, 150):
        app = app_for(folder, groups)
        size, login, floor = cost_of(app, keys, bench_user(groups), count)
        print(
            f"  {f'{groups} group' + ('s' if groups > 1 else ''):<22} {size:>7d} B {login:>6.2f} ms {floor:>6.2f} ms {login / floor:>5.2f}x",
            flush=True,
        )
    app = app_for(folder, 3)
    for padding in (16_000, 64_000, 200_000):
        size, login, floor = cost_of(app, keys, bench_user(3), count, padding)
        label = f"3 groups, +{padding // 1000} KB claim"
        print(
            f"  {label:<22} {size:>7d} B {login:>6.2f} ms {floor:>6.2f} ms {login / floor:>5.2f}x", flush=True
        )


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_logins(app, keys, user, total: int, checkpoints: dict[int, callable], deadline: float) -> int:
    """`total` logins in chunks (start → IdP answer → ACS); call checkpoints[n] after n logins."""
    client = app.test_client()
    done = 0
    while done < total and time.monotonic() < deadline:
        chunk = []
        for _ in range(min(500, total - done)):
            ip = client_ip()
            reply = client.get(f"/login/{PORTAL}", environ_base={"REMOTE_ADDR": ip})
            relay_state, request_id = pending_from_location(reply.headers["Location"])
            chunk.append((acs_form(signed_response(keys, user, request_id), relay_state), b"", ip))
        measure_logins(app, chunk)
        done += len(chunk)
        if done in checkpoints:
            checkpoints[done]()
    return done


def key_kinds(keys) -> str:
    kinds = Counter(key.split(":", 1)[0] for key in keys)
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))


def memory_keys(store) -> str:
    live = len(store)  # sweeps expired keys first
    return f"{live} live ({key_kinds(list(store._data))})"  # a peek inside, for the breakdown


def part_two(folder: str, total: int, store_url: str, label: str, seconds: float) -> str:
    """In a fresh process (one worker's worth): `total` logins, RSS after warm-up, 1,000 and `total`."""
    deadline = time.monotonic() + seconds
    own = Path(folder) / label.split()[0]
    own.mkdir(exist_ok=True)
    keys = make_keys(own)
    app = app_for(own, 3, store_url)
    store = app.extensions["broker"].store
    user = bench_user(3)
    run_logins(app, keys, user, 200, {}, deadline)  # warm-up: imports, caches
    gc.collect()
    base = rss_mb()
    marks: dict[int, float] = {}

    def mark(n: int):
        def record() -> None:
            gc.collect()
            marks[n] = rss_mb()

        return record

    started = time.monotonic()
    done = run_logins(app, keys, user, total, {1000: mark(1000), total: mark(total)}, deadline)
    elapsed = time.monotonic() - started
    if store_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(store_url)
        names = [name.decode().removeprefix("broker:") for name in client.scan_iter(count=1000)]
        used = client.info("memory")["used_memory"] / 1024 / 1024
        stored = f"{len(names)} in Redis ({key_kinds(names)}), Redis used_memory {used:.1f} MB"
    else:
        stored = memory_keys(store)
    after = "   ".join(f"after {n:>5}: {mb:6.1f} MB ({mb - base:+.1f})" for n, mb in sorted(marks.items()))
    return (
        f"  {label}: {done} logins in {elapsed:.0f} s (each: GET /login, IdP signs, POST /saml/acs)\n"
        f"    RSS after warm-up {base:.1f} MB   {after}\n"
        f"    store keys: {stored}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=10_000, help="logins per store in part 2")
    parser.add_argument("--per-shape", type=int, default=150, help="logins per shape in part 1")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    deadline = time.monotonic() + TIME_LIMIT
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = make_keys(folder)
        part_one(folder, keys, args.per_shape)
        print(f"\nmemory of one worker over {args.logins} logins (two fresh processes, side by side)")
        budget = max(20.0, deadline - time.monotonic() - 5)
        # Both stores at once, each in a fresh process of its own (one worker's worth of memory each).
        with ExitStack() as stack, ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
            jobs = [pool.submit(part_two, tmp, args.logins, "memory://", "memory store", budget)]
            if not args.skip_redis:
                from http_load import redis_server

                port, _ = stack.enter_context(redis_server(folder))
                url = f"redis://127.0.0.1:{port}/0"
                jobs.append(pool.submit(part_two, tmp, args.logins, url, "Redis store", budget))
            for job in jobs:
                print(job.result(), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
