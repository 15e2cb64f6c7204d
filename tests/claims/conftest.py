"""Fixtures for group resolution: a fake Graph on loopback, clients pointed at it, an in-memory store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from broker.clients.graph import GraphClient
from broker.demo.fake_graph import FakeGraphControl, create_fake_graph
from broker.demo.webserver import BackgroundServer
from broker.store.memory import MemoryStore

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "Zq8~s3cret.Value_Never-Logged"
SECRET_ENV = "TEST_GRAPH_SECRET"

# 2000 groups with predictable GUIDs and names
GROUPS = {str(uuid.UUID(int=0xA000 + n)): f"Group {n:04d}" for n in range(2000)}
GROUP_IDS = list(GROUPS)
UNKNOWN_GROUP = "00000000-dead-beef-0000-000000000001"
BIG_USER = "11111111-1111-1111-1111-111111111111"  # in 250 groups: overage, several pages
SMALL_USER = "22222222-2222-2222-2222-222222222222"  # in 3 groups
MEMBERSHIPS = {BIG_USER: GROUP_IDS[:250], SMALL_USER: GROUP_IDS[:3]}


@pytest.fixture(scope="session")
def graph_server() -> Iterator[tuple[str, FakeGraphControl]]:
    control = FakeGraphControl()
    app = create_fake_graph(TENANT, CLIENT_ID, SECRET, GROUPS, MEMBERSHIPS, control=control)
    with BackgroundServer(app) as server:
        yield server.url, control
    control.reset()


@pytest.fixture
def fake(graph_server: tuple[str, FakeGraphControl]) -> Iterator[FakeGraphControl]:
    """The fake's control object, clean for each test (no faults, counters at zero, no tokens)."""
    _, control = graph_server
    control.reset()
    yield control
    control.reset()  # wakes requests still sleeping in an injected delay


@pytest.fixture
def graph_url(graph_server: tuple[str, FakeGraphControl]) -> str:
    return graph_server[0]


@pytest.fixture
def make_client(graph_url: str, fake: FakeGraphControl) -> Iterator[Callable[..., GraphClient]]:
    """GraphClient factory pointed at the fake; short backoff keeps the retry tests quick."""
    clients: list[GraphClient] = []

    def make(**overrides: object) -> GraphClient:
        options: dict[str, object] = {
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "login_base": graph_url,
            "graph_base": graph_url,
            "backoff": 0.05,
        }
        options.update(overrides)
        client = GraphClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()
