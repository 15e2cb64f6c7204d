"""Fixtures for the `broker` command: config files from the harness, the fake LearnUpon API and fake Graph on
loopback, certificates with a chosen expiry, and a CliRunner with stdout and stderr apart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from broker.cli import main
from broker.demo.fake_graph import FakeGraphControl, create_fake_graph
from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.keys import KeyPair
from tests.harness import Keys, base_config

LU_USER_ENV, LU_KEY_ENV = "CLI_TEST_LU_USER", "CLI_TEST_LU_KEY"
LU_USER, LU_KEY = "cli-api-user", "cli-api-key-7c2e"
GRAPH_TENANT = "4a8f0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
GRAPH_CLIENT = "5b9e1d2f-3c4e-4f60-9bac-1d2e3f4a5b6c"
GRAPH_SECRET_ENV, GRAPH_SECRET = "CLI_TEST_GRAPH_SECRET", "graph-secret-for-cli-tests"
SALES_TEAM = "c2a1e5f0-8b7d-4c3e-a9f6-1d2e3f4a5b6c"  # named in the static map
ENGINEERING = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d"  # only Graph knows it
GRAPH_GROUPS = {SALES_TEAM: "Sales Team", ENGINEERING: "Engineering"}
# Entra users (object ID → what Graph shows) and their groups
GRAPH_USERS = {
    "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41": {"mail": "alex@contoso.example", "givenName": "Alex", "surname": "Morgan",
                                             "userPrincipalName": "alex@contoso.example"},
    "9d2e4f61-7a8b-4c3d-8e9f-1a2b3c4d5e6f": {"mail": None, "givenName": "Sam", "surname": "Lee",
                                             "userPrincipalName": "sam@contoso.example"},
    "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f": {"mail": "priya@contoso.example", "givenName": "Priya", "surname": "Shah",
                                             "userPrincipalName": "priya@contoso.example"},
    "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b": {"mail": None, "givenName": "Guest", "surname": "User",
                                             "userPrincipalName": "guest_fabrikam.example#EXT#@contoso.example"},
}  # fmt: skip
GRAPH_MEMBERSHIPS = {
    "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41": [SALES_TEAM],
    "9d2e4f61-7a8b-4c3d-8e9f-1a2b3c4d5e6f": [SALES_TEAM, ENGINEERING],
    "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f": [ENGINEERING],
    "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b": [SALES_TEAM],
}


@pytest.fixture
def run() -> Callable[..., Result]:
    """`run("check", "--config", path)`: the command's Result; exceptions other than SystemExit propagate."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result

    return invoke


@pytest.fixture
def write_config(keys: Keys, tmp_path: Path) -> Callable[..., Path]:
    """Write `base_config(keys, **overrides)` as YAML; returns its path."""

    def write(name: str = "broker.yaml", **overrides: object) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(base_config(keys, **overrides)), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _no_secret_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_SECRET_KEY", "cli-tests-session-key")
    monkeypatch.delenv("REDIS_URL", raising=False)


def make_certificate(key: KeyPair, path: Path, *, not_before: dt.datetime, not_after: dt.datetime) -> Path:
    """A certificate for `key` with the given validity (an expired one, one expiring soon)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cli test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key.private_key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# ---- the fake LearnUpon API --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _lu_server() -> Iterator[tuple[LearnUponState, BackgroundServer]]:
    # a high rate limit: the bulk tests send thousands of requests within a minute
    state = LearnUponState("acme", api_username=LU_USER, api_password=LU_KEY, rate_limit_per_minute=1_000_000)
    with BackgroundServer(create_app(state)) as server:
        yield state, server


@pytest.fixture
def lu(
    _lu_server: tuple[LearnUponState, BackgroundServer], monkeypatch: pytest.MonkeyPatch
) -> LearnUponState:
    """The fake portal, empty, with its API key pair in the environment."""
    state = _lu_server[0]
    assert state.wait_idle(), "a request of the previous test is still being answered"
    state.reset()
    monkeypatch.setenv(LU_USER_ENV, LU_USER)
    monkeypatch.setenv(LU_KEY_ENV, LU_KEY)
    return state


@pytest.fixture
def lu_provisioning(_lu_server: tuple[LearnUponState, BackgroundServer], lu: LearnUponState) -> dict:
    """`portals__academy__provisioning=` settings pointing at the fake."""
    return {
        "enabled": True,
        "base_url": _lu_server[1].url + "/api/v1/",
        "username_env": LU_USER_ENV,
        "password_env": LU_KEY_ENV,
        "managed_group_patterns": ["Team *"],
    }


# ---- the fake Graph ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _graph_server() -> Iterator[tuple[str, FakeGraphControl]]:
    control = FakeGraphControl()
    app = create_fake_graph(
        GRAPH_TENANT,
        GRAPH_CLIENT,
        GRAPH_SECRET,
        GRAPH_GROUPS,
        GRAPH_MEMBERSHIPS,
        users=GRAPH_USERS,
        control=control,
    )
    with BackgroundServer(app) as server:
        yield server.url, control
    control.reset()


@pytest.fixture
def graph(_graph_server: tuple[str, FakeGraphControl], monkeypatch: pytest.MonkeyPatch) -> dict:
    """`upstreams__entra__groups=` settings using the fake Graph, its secret in the environment."""
    url, control = _graph_server
    control.reset()
    control.max_page_size = 2  # small pages, so listings are read through @odata.nextLink
    monkeypatch.setenv(GRAPH_SECRET_ENV, GRAPH_SECRET)
    return {
        "static_map": {SALES_TEAM: "Sales Team"},
        "graph": {
            "tenant_id": GRAPH_TENANT,
            "client_id": GRAPH_CLIENT,
            "client_secret_env": GRAPH_SECRET_ENV,
            "login_base": url,
            "graph_base": url,
        },
    }
