"""Server CPU per login over HTTP against the same login in-process, and where the difference goes, in one run.

One private redis-server; the same config (Redis store, the test IdP, one portal) for every row:

  in-process, memory store    POST /saml/acs as a WSGI call in this process (CPU time of the thread)
  in-process, Redis store     the same with the Redis store: what redis-py's round trips add
  gunicorn <shape>            the same POST over loopback HTTP (keep-alive connections, closed loop) to
                              gunicorn with the project's settings (1 worker; access log and JSON logs to a
                              file, as in production): the worker's CPU time over the phase / logins
  gunicorn <class> /healthz   the smallest request the app serves ({"status": "ok"}), the same way: what
                              gunicorn, Flask and the app's before/after-request hooks cost per request

Rows for gunicorn: gthread with 4 threads at 1 and 4 concurrent connections, gthread with 2 threads, sync,
and gevent when installed, in alternating order over two rounds, with in-process blocks between them; each
ratio is to the in-process Redis row of the same run. The machine's RSA-2048 sign + verify time is printed next to them.

    python bench/http_cost.py [--logins 300]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from common import bench_user, config_dict, make_keys, prepare_logins
from http_load import HOST, closed_loop, cpu_seconds, free_port, gunicorn, prepare, redis_server, worker_pids
from login_cpu import measure_logins, measure_rsa

from broker.app import create_app
from broker.config import config_from_dict

# (worker class, threads per worker, concurrent connections)
SHAPES = (("gthread", 4, 1), ("gthread", 4, 4), ("gthread", 2, 4), ("sync", 1, 4), ("gevent", 4, 4))


def healthz_requests(count: int) -> list[bytes]:
    raw = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n".encode()
    return [raw] * count


async def healthz_loop(port: int, requests: list[bytes]) -> int:
    from http_load import Connection

    done = 0

    async def user(share: list[bytes]) -> None:
        nonlocal done
        connection = Connection(port)
        for raw in share:
            status, _, _ = await connection.request(raw)
            done += status == 200
        await connection.close()

    await asyncio.gather(*(user(requests[i::4]) for i in range(4)))
    return done


def gunicorn_row(
    folder: Path, config_file: Path, keys, user, shape: tuple[str, int, int], count: int
) -> tuple[float, float]:
    """(worker CPU ms per ACS login, worker CPU ms per /healthz) for one worker of the shape."""
    worker_class, threads, connections = shape
    port = free_port()
    with gunicorn(folder, config_file, 1, port, threads=threads, worker_class=worker_class) as server:
        (worker,) = worker_pids(server.pid)
        deadline = time.monotonic() + 60
        asyncio.run(closed_loop(port, prepare(port, keys, user, 30), 4, deadline))  # warm-up
        requests = prepare(port, keys, user, count)
        before = cpu_seconds([worker])
        tally = asyncio.run(closed_loop(port, requests, connections, deadline))
        acs = (cpu_seconds([worker]) - before) / max(1, len(tally.latencies))
        if tally.errors or len(tally.latencies) < count:
            raise RuntimeError(f"gunicorn {worker_class}: {len(tally.latencies)} of {count}, {tally.errors}")
        before = cpu_seconds([worker])
        answered = asyncio.run(healthz_loop(port, healthz_requests(count * 2)))
        health = (cpu_seconds([worker]) - before) / max(1, answered)
    return acs * 1000, health * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300, help="per row and round")
    args = parser.parse_args()
    shapes = [s for s in SHAPES if s[0] != "gevent" or importlib.util.find_spec("gevent")]
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as (redis_port, _):
        folder = Path(tmp)
        keys, user = make_keys(folder), bench_user(3)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        config = config_dict(folder, store_url=redis_url)
        config["rate_limits"] = {"trusted_proxies": 1}
        config_file = folder / "broker.yaml"
        config_file.write_text(yaml.safe_dump(config))
        os.environ["BROKER_ACCESS_LOG"] = str(folder / "access.log")  # as to stdout, minus the terminal
        apps = {store: create_app(config_from_dict(config_dict(folder, store_url=url)))
                for store, url in (("memory", "memory://"), ("Redis", redis_url))}  # fmt: skip
        in_process: dict[str, list[float]] = {"memory": [], "Redis": []}

        def in_process_block() -> None:
            for store, app in apps.items():
                in_process[store].extend(
                    measure_logins(app, prepare_logins(app, keys, user, args.logins // 4))
                )

        for app in apps.values():
            measure_logins(app, prepare_logins(app, keys, user, 30))
        rows: dict[tuple[str, int, int], list[tuple[float, float]]] = {shape: [] for shape in shapes}
        for round_number in range(2):
            for shape in shapes if round_number == 0 else shapes[::-1]:
                in_process_block()  # between the gunicorn rows, so a busy neighbour hits both alike
                rows[shape].append(gunicorn_row(folder, config_file, keys, user, shape, args.logins // 2))
        in_process_block()
        rsa = statistics.median(measure_rsa(keys, 200)) * 1000
    memory, base = (statistics.median(in_process[store]) * 1000 for store in ("memory", "Redis"))
    load = os.getloadavg()
    print(
        f"machine: RSA-2048 sign + verify {rsa:.3f} ms; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"{'where':<44} {'CPU per login':>14} {'ratio':>7}   {'/healthz':>9}")
    print(f"{'in-process, memory store':<44} {memory:11.2f} ms {memory / base:6.2f}x")
    print(f"{'in-process, Redis store':<44} {base:11.2f} ms {1:6.2f}x")
    for shape in shapes:
        worker_class, threads, connections = shape
        acs = statistics.mean(r[0] for r in rows[shape])
        health = statistics.mean(r[1] for r in rows[shape])
        workers = (
            f"{threads} threads"
            if worker_class == "gthread"
            else ("greenlets" if worker_class == "gevent" else "1 thread")
        )
        label = f"gunicorn {worker_class}, 1 worker ({workers}), {connections} conn."
        print(f"{label:<44} {acs:11.2f} ms {acs / base:6.2f}x   {health:6.2f} ms")
    print(
        "target: gunicorn ≤ 1.3x the in-process figure. gunicorn rows: mean of two rounds; in-process: median of"
    )
    print(
        "blocks run between the gunicorn rows. /healthz: the same worker's CPU per GET /healthz (4 connections)"
    )


if __name__ == "__main__":
    main()
