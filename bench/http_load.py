"""End to end under load: gunicorn (2 workers, the project's deploy/gunicorn.conf.py) with a private Redis,
driven over loopback by real /login → /saml/acs round trips answered by the test IdP.

Setup (not measured): a private `redis-server` on a free port (never the one on 6379), temporary keys and a
YAML config, gunicorn on a free port. Pending logins are created through the server with GET /login/academy
(the AuthnRequest ID comes back in the redirect) and the test IdP signs one response per pending login, each
with unique IDs, before any clock starts.

Load generator: this process, Python asyncio on raw sockets (stdlib only), keep-alive connections as nginx
keeps them to its upstreams (deploy/nginx.conf), every reply read in full and checked (200 and an auto-post
form with SAMLResponse; anything else counts as an error). Each simulated browser has its own client address
(X-Forwarded-For through one trusted proxy, as behind nginx), so the per-IP rate limit sees real traffic.
Three phases:

  acs    closed loop, --concurrency connections: POST /saml/acs with the pre-signed responses, as fast as
         the server answers (the throughput figure)
  rate   open loop at --rate logins/s: POSTs sent on a fixed schedule, latency measured from the scheduled
         time (no coordinated omission; the latency figure at the target rate)
  pair   closed loop: GET /login/academy then POST /saml/acs per login (the GET creates a pending login the
         way a browser does; the POST consumes one prepared in setup, so the server does a full login's work)

The load generator shares the machine's cores with the server: its own CPU time is printed with the figures.

    python bench/http_load.py [--logins 3000] [--concurrency 8] [--rate 300] [--workers 2] [--threads 4]
    python bench/http_load.py --sizing      # throughput and p99 for several workers x threads shapes
    python bench/http_load.py --tail        # p99 at --rate for 4 and 2 threads per worker, alternating
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import yaml
from common import PORTAL, bench_user, client_ip, config_dict, make_keys, percentile, signed_response
from login_cpu import measure_rsa

from broker.demo.idp_response import encode

REPO = Path(__file__).resolve().parent.parent
HOST = "broker.bench"
LOCATION = re.compile(rb"\r\nlocation: ([^\r]+)", re.IGNORECASE)
TIME_LIMIT = 100.0  # seconds for the whole run; phases stop early rather than run over


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


@contextmanager
def redis_server(folder: Path) -> Iterator[tuple[int, int]]:
    """A private, memory-only redis-server on a free loopback port; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    try:
        wait_until(pong, "redis-server")
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def gunicorn(
    folder: Path, config_file: Path, workers: int, port: int, threads: int = 4, worker_class: str = "gthread"
) -> Iterator[subprocess.Popen]:
    """gunicorn with the project's settings file (gthread, keep-alive); access log to a file, as to stdout."""
    env = {
        **os.environ,
        "BROKER_CONFIG": str(config_file),
        "BROKER_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "BROKER_THREADS": str(threads),
        "BROKER_WORKER_CLASS": worker_class,
        "BROKER_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "PYTHONPATH": str(REPO),
        "BROKER_MAX_REQUESTS": "0",  # no worker recycling in the middle of a measurement
    }
    settings = REPO / "deploy" / "gunicorn.conf.py"
    if settings.exists():
        command = ["-c", str(settings)]
    else:  # the same choices, should the settings file move
        command = [
            "-w",
            str(workers),
            "-k",
            worker_class,
            "--threads",
            str(threads),
            "--keep-alive",
            "5",
            "-b",
            env["BROKER_BIND"],
        ]
    log = (folder / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *command, "broker.wsgi:app"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200,
            "gunicorn",
        )
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def server_warnings(log: Path) -> list[str]:
    """The JSON log's WARNING and ERROR lines (why a request got a 503, say), without the startup notices."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if ('"level": "WARNING"' in line or '"level": "ERROR"' in line) and "BROKER_" not in line:
            found.append(line[:300])
    return found


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / ticks, sum(fields[:8]) / ticks


def rss_mb(pids: list[int]) -> list[float]:
    sizes = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


# --- HTTP over raw sockets --------------------------------------------------------------------------------


# One benchmark browser: the broker keeps a well-formed binding cookie it is sent, so GET and POST share it.
BROWSER_COOKIE = "broker_browser=" + "b" * 43


def get_login(ip: str) -> bytes:
    return (f"GET /login/{PORTAL} HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: {ip}\r\n"
            f"X-Forwarded-Proto: https\r\nAccept: text/html\r\nCookie: {BROWSER_COOKIE}\r\n\r\n").encode()  # fmt: skip


def post_acs(body: bytes, ip: str) -> bytes:
    head = (f"POST /saml/acs HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: {ip}\r\nX-Forwarded-Proto: https\r\n"
            f"Cookie: {BROWSER_COOKIE}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it, and after REUSE requests.

    gunicorn's workers each accept their own connections, so a handful of long-lived connections can all
    land on one worker and leave the other idle. nginx also retires upstream connections (keepalive_requests,
    1000 by default); retiring them sooner here spreads the load over both workers within a few seconds."""

    REUSE = 50

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0

    async def request(self, raw: bytes) -> tuple[int, bytes, bytes]:
        if self.used >= self.REUSE:
            await self.close()
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.used = 0
            self.used += 1
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()  # the server closed an idle keep-alive connection: once more, fresh
                if attempt == 2:
                    raise
        status = int(head[9:12])
        length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        body = await self.reader.readexactly(int(length[1])) if length else b""
        if re.search(rb"\r\nconnection: *close", head, re.IGNORECASE):
            await self.close()
        return status, head, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def acs_ok(status: int, body: bytes) -> bool:
    return status == 200 and b'name="SAMLResponse"' in body


# --- setup: pending logins and the IdP's answers ------------------------------------------------------------


async def create_pending(port: int, count: int, parallel: int = 4) -> list[tuple[str, str, str]]:
    """GET /login/academy `count` times: [(client IP, RelayState, AuthnRequest ID)]."""
    from common import pending_from_location

    results: list[tuple[str, str, str]] = []

    async def worker() -> None:
        connection = Connection(port)
        while len(results) < count:
            ip = client_ip()
            status, head, _ = await connection.request(get_login(ip))
            location = LOCATION.search(head)
            if status != 302 or location is None:
                raise RuntimeError(f"GET /login answered {status}")
            results.append((ip, *pending_from_location(location[1].decode())))
        await connection.close()

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return results[:count]


def prepare(port: int, keys, user, count: int) -> list[bytes]:
    """Pending logins on the server, and for each a POST /saml/acs request with the IdP's signed answer."""
    pending = asyncio.run(create_pending(port, count))
    requests = []
    for ip, relay_state, request_id in pending:
        body = urlencode(
            {"SAMLResponse": encode(signed_response(keys, user, request_id)), "RelayState": relay_state}
        )
        requests.append(post_acs(body.encode(), ip))
    return requests


# --- the three phases -----------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.started = self.ended = 0.0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def report(self, label: str, unit: str = "logins") -> str:
        elapsed = self.ended - self.started
        done = len(self.latencies)
        if not done:
            return f"{label}: nothing completed; errors {self.errors}"
        ms = [value * 1000 for value in self.latencies]
        return (f"{label:<6} {done:5d} {unit} in {elapsed:5.2f} s = {done / elapsed:6.1f} {unit}/s   "
                f"latency p50 {statistics.median(ms):6.1f} ms  p99 {percentile(ms, 0.99):6.1f} ms  "
                f"max {max(ms):6.1f} ms   errors {sum(self.errors.values())}"
                + (f" {self.errors}" if self.errors else ""))  # fmt: skip


async def closed_loop(port: int, requests: list[bytes], concurrency: int, deadline: float,
                      pair: bool = False) -> Tally:  # fmt: skip
    tally = Tally()
    queue = iter(requests)

    async def user() -> None:
        connection = Connection(port)
        for raw in queue:
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            try:
                if pair:
                    status, _, _ = await connection.request(get_login(client_ip()))
                    if status != 302:
                        tally.error(f"GET {status}")
                        continue
                status, _, body = await connection.request(raw)
            except (OSError, asyncio.IncompleteReadError) as exc:
                tally.error(type(exc).__name__)
                await connection.close()
                continue
            if acs_ok(status, body):
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.error(f"POST {status}")
        await connection.close()

    tally.started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    tally.ended = time.perf_counter()
    return tally


async def open_loop(port: int, requests: list[bytes], rate: float, deadline: float) -> Tally:
    """Send on a fixed schedule (1/rate apart) whatever the replies do; latency from the scheduled time."""
    tally = Tally()
    idle: list[Connection] = []
    tasks = []

    async def one(raw: bytes, scheduled: float) -> None:
        connection = idle.pop() if idle else Connection(port)
        try:
            status, _, body = await connection.request(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            tally.error(type(exc).__name__)
            await connection.close()
            return
        (tally.latencies.append(time.perf_counter() - scheduled) if acs_ok(status, body)
         else tally.error(f"POST {status}"))  # fmt: skip
        idle.append(connection)

    tally.started = time.perf_counter()
    for index, raw in enumerate(requests):
        scheduled = tally.started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() > deadline:
            break
        tasks.append(asyncio.create_task(one(raw, scheduled)))
    await asyncio.gather(*tasks)
    tally.ended = time.perf_counter()
    for connection in idle:
        await connection.close()
    return tally


SHAPES = (("gthread", 2, 4), ("gthread", 2, 1), ("gthread", 3, 2), ("gthread", 4, 1), ("gthread", 4, 2))
# --classes: the worker classes side by side (gevent only when installed: it is not a dependency)
CLASSES = (("gthread", 2, 4), ("sync", 2, 1), ("sync", 4, 1), ("gevent", 2, 4))


def sizing(
    folder: Path, config_file: Path, keys, user, concurrency: int, deadline: float, rounds: int = 2,
    shapes: tuple[tuple[str, int, int], ...] = SHAPES,
) -> None:  # fmt: skip
    """The acs phase for several (worker class, workers, threads) shapes, in alternating order."""
    print(f"sizing: {concurrency} connections, 600 logins per shape and round, closed loop")
    for round_number in range(rounds):
        for worker_class, workers, threads in shapes if round_number % 2 == 0 else shapes[::-1]:
            if time.monotonic() > deadline - 12:
                print("  (time limit reached)")
                return
            port = free_port()
            with gunicorn(folder, config_file, workers, port, threads, worker_class) as server:
                asyncio.run(closed_loop(port, prepare(port, keys, user, 20 * workers), 4, deadline))
                requests = prepare(port, keys, user, 600)
                pids = worker_pids(server.pid)
                before, own, (busy, total) = cpu_seconds(pids), time.process_time(), machine_cpu()
                tally = asyncio.run(closed_loop(port, requests, concurrency, deadline))
                elapsed = tally.ended - tally.started
                used, own = cpu_seconds(pids) - before, time.process_time() - own
                busy, total = machine_cpu()[0] - busy, machine_cpu()[1] - total
                others = max(0.0, busy - used - own) / elapsed * 100  # includes redis-server
                idle = max(0.0, total - busy) / elapsed * 100
                done = max(1, len(tally.latencies))
                shape = f"{worker_class} {workers}" + (f"x{threads}" if worker_class == "gthread" else "")
                print(
                    f"  {shape:<11} {tally.report('acs')[7:]}   server CPU {used / done * 1000:.2f} ms/login "
                    f"({used / elapsed * 100:.0f}%), others {others:.0f}%, idle {idle:.0f}% (of a core)",
                    flush=True,
                )


TAIL_SHAPES = (("gthread", 2, 4), ("gthread", 2, 2))


def tail_sizing(
    folder: Path, config_file: Path, keys, user, rate: float, seconds: float, deadline: float, rounds: int = 4,
    shapes: tuple[tuple[str, int, int], ...] = TAIL_SHAPES,
) -> None:  # fmt: skip
    """The rate phase (open loop) for each shape, `rounds` times in alternating order: the tail latency of
    several threads per worker against fewer, compared inside one run (the host's noise moves whole runs)."""
    print(f"tail: {rate:.0f} logins/s for {seconds:.0f} s per shape and round, open loop, {rounds} rounds")
    p99s: dict[str, list[float]] = {}
    for round_number in range(rounds):
        for worker_class, workers, threads in shapes if round_number % 2 == 0 else shapes[::-1]:
            if time.monotonic() > deadline - 2 * seconds - 8:
                print("  (time limit reached)")
                break
            port = free_port()
            with gunicorn(folder, config_file, workers, port, threads, worker_class) as server:
                asyncio.run(closed_loop(port, prepare(port, keys, user, 20 * workers), 4, deadline))
                requests = prepare(port, keys, user, int(rate * seconds))
                pids = worker_pids(server.pid)
                before = cpu_seconds(pids)
                tally = asyncio.run(open_loop(port, requests, rate, deadline))
                used = cpu_seconds(pids) - before
            shape = f"{worker_class} {workers}x{threads}"
            ms = [value * 1000 for value in tally.latencies]
            if ms:
                p99s.setdefault(shape, []).append(percentile(ms, 0.99))
            done = max(1, len(tally.latencies))
            print(f"  {shape:<13} {tally.report('rate')[7:]}   server CPU {used / done * 1000:.2f} ms/login",
                  flush=True)  # fmt: skip
    for shape, values in p99s.items():
        print(f"  {shape:<13} p99 median of {len(values)} rounds: {statistics.median(values):7.1f} ms   "
              f"(each: {', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=3000, help="logins prepared for the acs phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=300.0, help="logins/s in the open-loop phase")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the rate and pair phases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--sizing",
        action="store_true",
        help=f"instead: the acs phase for (class, workers, threads) in {SHAPES}",
    )
    parser.add_argument("--classes", action="store_true", help=f"instead: the acs phase for {CLASSES}")
    parser.add_argument("--tail", action="store_true",
                        help=f"instead: the rate phase for {TAIL_SHAPES}, 4 rounds, alternating")  # fmt: skip
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread)")
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + TIME_LIMIT
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as (redis_port, redis_pid):
        folder = Path(tmp)
        keys = make_keys(folder)
        user = bench_user(3)
        config = config_dict(folder, store_url=f"redis://127.0.0.1:{redis_port}/0")
        config["rate_limits"] = {"trusted_proxies": 1}  # behind nginx: the client is in X-Forwarded-For
        config_file = folder / "broker.yaml"
        config_file.write_text(yaml.safe_dump(config))
        if args.tail:
            tail_sizing(folder, config_file, keys, user, args.rate, min(args.seconds, 5.0), deadline)
            rsa = statistics.median(measure_rsa(keys, 200)) * 1000
            print(f"machine: RSA-2048 sign + verify {rsa:.3f} ms; load average {os.getloadavg()[0]:.1f}")
            return
        if args.sizing or args.classes:
            shapes = SHAPES
            if args.classes:
                shapes = tuple(s for s in CLASSES if s[0] != "gevent" or importlib.util.find_spec("gevent"))
                if len(shapes) < len(CLASSES):
                    print("gevent: skipped, not installed (pip install gevent)")
            sizing(folder, config_file, keys, user, args.concurrency, deadline, shapes=shapes)
            rsa = statistics.median(measure_rsa(keys, 200)) * 1000
            print(f"machine: RSA-2048 sign + verify {rsa:.3f} ms; load average {os.getloadavg()[0]:.1f}")
            return
        port = free_port()
        with gunicorn(folder, config_file, args.workers, port, args.threads, args.worker_class) as server:
            workers = worker_pids(server.pid)
            rate_count = int(args.rate * args.seconds)
            pair_count = int(args.seconds * 250)
            print(f"setup: redis-server :{redis_port}, gunicorn :{port} ({len(workers)} workers), "
                  f"preparing {args.logins + rate_count + pair_count} signed logins …", flush=True)  # fmt: skip
            warm = prepare(port, keys, user, 40)
            asyncio.run(closed_loop(port, warm, 4, deadline))  # imports, caches, connections in both workers
            acs_requests = prepare(port, keys, user, args.logins)
            rate_requests = prepare(port, keys, user, rate_count)
            pair_requests = prepare(port, keys, user, pair_count)
            print(f"setup done in {time.monotonic() - started:.0f} s\n", flush=True)

            results = []
            for label, run in (
                ("acs", lambda: closed_loop(port, acs_requests, args.concurrency, deadline)),
                ("rate", lambda: open_loop(port, rate_requests, args.rate, deadline)),
                ("pair", lambda: closed_loop(port, pair_requests, args.concurrency, deadline, pair=True)),
            ):
                per_worker, own_cpu = [cpu_seconds([pid]) for pid in workers], time.process_time()
                redis_cpu, (busy, total) = cpu_seconds([redis_pid]), machine_cpu()
                tally = asyncio.run(run())
                per_worker = [
                    cpu_seconds([pid]) - before for pid, before in zip(workers, per_worker, strict=True)
                ]
                server_cpu, own_cpu = sum(per_worker), time.process_time() - own_cpu
                redis_cpu = cpu_seconds([redis_pid]) - redis_cpu
                busy, total = machine_cpu()[0] - busy, machine_cpu()[1] - total
                others = max(0.0, busy - server_cpu - own_cpu - redis_cpu)
                elapsed = tally.ended - tally.started
                unit = "pairs" if label == "pair" else "logins"
                results.append(tally.report(label, unit))
                print(results[-1])
                done = max(1, len(tally.latencies))
                split = "/".join(f"{cpu / elapsed * 100:.0f}" for cpu in per_worker)
                print(
                    f"       server CPU {server_cpu / elapsed * 100:5.1f}% of a core (workers {split}%) "
                    f"({server_cpu / done * 1000:.2f} ms per {unit[:-1]}), load generator "
                    f"{own_cpu / elapsed * 100:5.1f}% of a core ({own_cpu / done * 1000:.2f} ms per {unit[:-1]})"
                )
                print(f"       redis {redis_cpu / elapsed * 100:.0f}% of a core; other processes on the machine "
                      f"{others / elapsed * 100:.0f}% of a core; machine idle "
                      f"{max(0.0, total - busy) / elapsed * 100:.0f}% of a core", flush=True)  # fmt: skip
            memory = rss_mb(worker_pids(server.pid))
        warnings = server_warnings(folder / "gunicorn.log")
        rsa = statistics.median(measure_rsa(keys, 200)) * 1000
    if warnings:
        print(f"\nthe server's warnings and errors (first 5 of {len(warnings)}):", *warnings[:5], sep="\n  ")
    print(f"\nworkers {args.workers} ({args.worker_class}, {args.threads} threads each), {os.cpu_count()} CPUs shared with the load generator; "
          f"worker RSS after the run: {', '.join(f'{m:.0f} MB' for m in memory)}")  # fmt: skip
    load = os.getloadavg()
    print(f"machine: RSA-2048 sign + verify {rsa:.3f} ms (CPU, median, after the run); load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    print(f"targets: ≥ 300 logins/s, p99 < 50 ms, 0 errors   (whole run {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
