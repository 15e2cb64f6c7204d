"""Fixtures for provisioning tests: the fake LearnUpon API on loopback HTTP, clients, a memory store."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from broker.clients.learnupon import LearnUponClient
from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.model import Claims
from broker.provisioning.plan import ProvisioningSettings
from broker.store.memory import MemoryStore

API_USER = "api-user-5d1e0c"
API_KEY = "api-key-8f3a9b27c4"


@pytest.fixture
def api_key_pair() -> tuple[str, str]:
    """The fake portal's API username and key (the values the secrecy tests look for)."""
    return API_USER, API_KEY


@pytest.fixture(scope="session")
def _shared_fake() -> Iterator[tuple[LearnUponState, BackgroundServer]]:
    # One server for the session: stopping one costs half a second (serve_forever's poll interval).
    state = LearnUponState("acme", api_username=API_USER, api_password=API_KEY)
    with BackgroundServer(create_app(state)) as server:
        yield state, server


@pytest.fixture
def lu_state(_shared_fake: tuple[LearnUponState, BackgroundServer]) -> LearnUponState:
    """The fake portal `acme`, empty, with no faults and default limits."""
    state = _shared_fake[0]
    assert state.wait_idle(), "a request of the previous test is still being answered"
    state.reset()
    return state


@pytest.fixture
def lu_server(
    _shared_fake: tuple[LearnUponState, BackgroundServer], lu_state: LearnUponState
) -> BackgroundServer:
    return _shared_fake[1]


@pytest.fixture
def lu_base_url(lu_server: BackgroundServer) -> str:
    return lu_server.url + "/api/v1/"


@pytest.fixture
def make_client(lu_base_url: str) -> Iterator[Callable[..., LearnUponClient]]:
    """Clients with short timeouts and backoff, so failure tests stay fast."""
    clients: list[LearnUponClient] = []

    def make(**kwargs) -> LearnUponClient:
        kwargs.setdefault("timeout", (1.0, 2.0))
        kwargs.setdefault("backoff", 0.02)
        kwargs.setdefault("max_backoff", 0.1)
        username = kwargs.pop("username", API_USER)
        password = kwargs.pop("password", API_KEY)
        client = LearnUponClient(kwargs.pop("base_url", lu_base_url), username, password, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.session.close()


@pytest.fixture
def client(make_client: Callable[..., LearnUponClient]) -> LearnUponClient:
    return make_client()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings() -> ProvisioningSettings:
    return ProvisioningSettings(
        enabled=True,
        username_env="LU_API_USER",
        password_env="LU_API_KEY",
        managed_groups=["Sales"],
        managed_group_patterns=["LU-*"],
        budget_seconds=5.0,
    )


@pytest.fixture
def make_claims() -> Callable[..., Claims]:
    """Claims of Ada, in LU-Engineering and Staff, with any field overridden."""

    def make(**overrides) -> Claims:
        values = {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "groups": ("LU-Engineering", "Staff"),
        }
        values.update(overrides)
        return Claims(**values)

    return make
