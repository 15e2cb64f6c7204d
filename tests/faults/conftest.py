"""Fault tests run real processes (redis-server, loopback fakes) and break them on purpose."""

from __future__ import annotations

import os

import pytest

from tests.faults.processes import RedisProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts its own redis-server (`redis_proc`) needs one installed: mark it `redis`, so
    `-m "not redis"` leaves it out. (A `pytestmark` in a conftest file marks nothing.)"""
    for item in items:
        if "redis_proc" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)


def _need(exc: Exception):
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the fault tests: {exc}")
    pytest.skip(str(exc))


@pytest.fixture
def redis_proc(tmp_path):
    """A redis-server without persistence, as in the incident: restarting it loses every key."""
    try:
        server = RedisProcess(tmp_path)
    except (FileNotFoundError, TimeoutError) as exc:
        _need(exc)
    yield server
    server.kill()
