"""Redis high availability through one URL: Sentinel (followed through a failover) and Redis Cluster,
each against real redis-server processes started here on free loopback ports."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from broker.errors import StoreUnavailable
from broker.store.connect import open_store

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
if REDIS_SERVER is None or REDIS_CLI is None:
    if os.environ.get("CI"):
        pytest.fail("CI must run the Redis HA tests, but redis-server/redis-cli are missing", pytrace=False)
    pytest.skip("redis-server or redis-cli not installed", allow_module_level=True)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(with_bus: bool = False) -> int:
    """A free port; with_bus: port + 10000 free too (a cluster node's bus port)."""
    for _ in range(200):
        port = random.randint(20000, 30000)  # noqa: S311 - choosing a test port
        if port_free(port) and (not with_bus or port_free(port + 10000)):
            return port
    raise RuntimeError("no free port")


def wait_for(check, what: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


class Processes:
    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[subprocess.Popen] = []

    def redis(self, port: int, *args: str) -> subprocess.Popen:
        work = self.folder / str(port)
        work.mkdir()
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(work), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.started.append(process)
        wait_for(lambda: redis.Redis(port=port).ping(), f"redis on {port}")
        return process

    def stop(self) -> None:
        for process in self.started:
            process.terminate()
        for process in self.started:
            process.wait(timeout=10)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop()


def exercise(store) -> None:
    store.put("pending", b"request", 60)
    assert store.get("pending") == b"request"
    assert store.add("replay", b"1", 60) and not store.add("replay", b"1", 60)
    assert store.take("pending") == b"request" and store.take("pending") is None
    assert [store.incr("hits", 60) for _ in range(3)] == [1, 2, 3]
    for i in range(20):
        store.put(f"name:{i}", str(i).encode(), 60)
    assert store.get_many([f"name:{i}" for i in range(20)] + ["absent"]) == [
        str(i).encode() for i in range(20)
    ] + [None]
    for i in range(5):  # the activity log: a stream trimmed by a script on one key
        store.log_append("activity", f"e{i}".encode(), max_entries=3, ttl=60)
    assert store.log_recent("activity", 10, ttl=60) == [b"e4", b"e3", b"e2"]


def test_sentinel_url_finds_the_master_and_follows_a_failover(processes, tmp_path):
    master, replica, sentinel = free_port(), free_port(), free_port()
    processes.redis(master)
    processes.redis(replica, "--replicaof", "127.0.0.1", str(master))
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n"
    )
    process = subprocess.Popen([REDIS_SERVER, str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    processes.started.append(process)
    watcher = redis.Redis(port=sentinel, decode_responses=True)
    wait_for(
        lambda: watcher.execute_command("SENTINEL", "REPLICAS", "mymaster"), "sentinel to see the replica", 30
    )

    store = open_store(f"redis+sentinel://127.0.0.1:{sentinel}/mymaster/0", namespace="ha:")
    exercise(store)
    store.put("survives", b"yes", 600)
    wait_for(lambda: redis.Redis(port=replica).get("ha:survives"), "replication")

    watcher.execute_command("SENTINEL", "FAILOVER", "mymaster")
    wait_for(lambda: watcher.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1] == str(replica),
             "the failover", 30)  # fmt: skip

    wait_for(
        lambda: redis.Redis(port=master).info("replication")["role"] == "slave", "the old master to step down"
    )

    def write_after_failover() -> bool:
        try:
            store.put("written-after", b"ok", 60)
            return True
        except StoreUnavailable:  # the old master refuses writes; the client asks Sentinel again and moves on
            return False

    wait_for(write_after_failover, "a write through the new master")
    assert redis.Redis(port=replica).get("ha:written-after") == b"ok"
    assert store.get("survives") == b"yes"


def test_cluster_url_spreads_keys_over_the_nodes(processes):
    ports = [free_port(with_bus=True) for _ in range(3)]
    for port in ports:
        processes.redis(port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf")
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
         "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    wait_for(lambda: redis.Redis(port=ports[0]).cluster("info").get("cluster_state") == "ok",
             "the cluster")  # fmt: skip

    store = open_store(f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", namespace="cl:")
    exercise(store)
    keys_per_node = [redis.Redis(port=p).dbsize() for p in ports]
    assert sum(1 for count in keys_per_node if count) >= 2, keys_per_node  # really spread over the nodes
