"""Shared fixtures: keys generated once per run, a private Redis server, and a broker test harness."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from broker.keys import KeyPair, generate_key_pair
from tests.harness import Keys

IN_CI = bool(os.environ.get("CI"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")

    def make(name: str) -> KeyPair:
        return generate_key_pair(folder / f"{name}.key", folder / f"{name}.crt", f"test {name}")

    return Keys(
        folder=folder,
        broker=make("broker"),
        portal=make("portal"),
        idp=make("idp"),
        idp_next=make("idp-next"),
        attacker=make("attacker"),
        okta=make("okta"),
    )


class RedisServer:
    def __init__(self, url: str, process: subprocess.Popen | None, port: int | None):
        self.url = url
        self.process = process
        self.port = port

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_redis_server(folder: Path) -> RedisServer:
    """A private redis-server on a free loopback port (never the shared one on 6379)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return RedisServer(f"redis://127.0.0.1:{port}/0", process, port)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise TimeoutError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    if os.environ.get("REDIS_URL"):
        yield RedisServer(os.environ["REDIS_URL"], None, None)
        return
    try:
        server = start_redis_server(tmp_path_factory.mktemp("redis"))
    except (FileNotFoundError, TimeoutError) as exc:
        if IN_CI:
            pytest.fail(f"CI must run the Redis tests, but no redis-server could be started: {exc}")
        pytest.skip(f"no redis-server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> str:
    """A Redis URL plus a per-test key namespace is handled by the stores; flush only our private server."""
    if redis_server.process is not None:
        import redis

        redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The demo's servers, shared by the tests of one module (tests that need a fresh one override this)."""
    from tests.demo_servers import running_demo

    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture
def learnupon(monkeypatch: pytest.MonkeyPatch):
    """The fake LearnUpon REST API of portal `academy` over loopback HTTP, with its credentials in
    TEST_LU_USER / TEST_LU_KEY: (API base URL, its state)."""
    from broker.demo.learnupon_api import create_app
    from broker.demo.learnupon_state import LearnUponState
    from broker.demo.webserver import BackgroundServer

    monkeypatch.setenv("TEST_LU_USER", "api-user")
    monkeypatch.setenv("TEST_LU_KEY", "api-key")
    state = LearnUponState("academy", api_username="api-user", api_password="api-key")
    with BackgroundServer(create_app(state)) as server:
        yield server.url + "/api/v1/", state
