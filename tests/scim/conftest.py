"""Fixtures for the SCIM bridge: three fake LearnUpon portals on loopback HTTP, and a broker serving SCIM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from broker.app import create_app
from broker.config import config_from_dict
from broker.demo.learnupon_api import create_app as create_fake_learnupon
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.scim.auth import token_digest
from broker.store.memory import MemoryStore
from tests.harness import base_config

PORTALS = ("academy", "sales", "partners")
API_USER, API_KEY = "scim-api-user", "scim-api-key-7c1d"
TOKEN = "entra-scim-token-for-tests-0123456789abcdef"
OKTA_TOKEN = "okta-scim-token-for-tests-fedcba9876543210"
SCIM = "application/scim+json"


@pytest.fixture(scope="session")
def _fake_portals() -> Iterator[tuple[dict[str, LearnUponState], BackgroundServer]]:
    states = {p: LearnUponState(p, api_username=API_USER, api_password=API_KEY) for p in PORTALS}
    with BackgroundServer(create_fake_learnupon(list(states.values()))) as server:
        yield states, server


@pytest.fixture
def portals(_fake_portals) -> dict[str, LearnUponState]:
    states = _fake_portals[0]
    for state in states.values():
        assert state.wait_idle()
        state.reset()
    return states


def scim_config(keys, lu_url: str, **overrides: Any) -> dict:
    provisioning = {"enabled": True, "username_env": "SCIM_TEST_LU_USER", "password_env": "SCIM_TEST_LU_KEY"}
    config = base_config(keys)
    config["upstreams"]["okta"] = {**config["upstreams"]["entra"], "preset": "okta",
                                   "entity_id": "http://www.okta.com/exk1"}  # fmt: skip
    # academy accepts both upstreams, so each owns its e-mail domains (issue 14)
    config["upstreams"]["entra"]["email_domains"] = ["contoso.example", "elsewhere.example"]
    config["upstreams"]["okta"]["email_domains"] = ["fabrikam.example", "northwind.example"]
    config["portals"] = {
        "academy": {"upstreams": ["entra", "okta"], "custom_data": [{"field": "department", "source": "department"},
                    {"field": "employee_no", "source": "employeeNumber"}],
                    "provisioning": {**provisioning, "base_url": f"{lu_url}/academy/api/v1/"}},
        "sales": {"upstream": "entra", "required_groups": ["Sales*"], "groups": {"allow": ["Sales*", "All Staff"]},
                  "provisioning": {**provisioning, "base_url": f"{lu_url}/sales/api/v1/"}},
        "partners": {"upstream": "okta", "scim": {"on_deprovision": "delete"},
                     "provisioning": {**provisioning, "base_url": f"{lu_url}/partners/api/v1/"}},
    }  # fmt: skip
    config["routing"] = {
        "rules": [
            {"portals": ["academy", "sales"], "groups": ["Sales*"]},
            {"portals": ["academy"], "email_domains": ["contoso.example"]},
            {"portals": ["partners"], "email_domains": ["fabrikam.example"]},
        ]
    }
    config["scim"] = {
        "enabled": True,
        "requests_per_minute": 0,
        "clients": [
            {"name": "entra", "token_sha256_env": "SCIM_TEST_ENTRA_TOKEN_SHA256", "upstream": "entra"},
            {"name": "okta", "token_sha256_env": "SCIM_TEST_OKTA_TOKEN_SHA256", "upstream": "okta"},
        ],
    }
    for dotted, value in overrides.items():
        node = config
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config


@pytest.fixture(autouse=True)
def _scim_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TEST_LU_USER", API_USER)
    monkeypatch.setenv("SCIM_TEST_LU_KEY", API_KEY)
    monkeypatch.setenv("SCIM_TEST_ENTRA_TOKEN_SHA256", token_digest(TOKEN))
    monkeypatch.setenv("SCIM_TEST_OKTA_TOKEN_SHA256", token_digest(OKTA_TOKEN))


@dataclass
class Scim:
    """A SCIM client of the broker's Flask app (real request parsing, real fake-LearnUpon HTTP behind)."""

    app: Flask
    http: FlaskClient
    portals: dict[str, LearnUponState]
    token: str = TOKEN
    prefix: str = "/scim/v2"

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None,
             **params: str):  # fmt: skip
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = SCIM
        return self.http.open(
            self.prefix + path, method=method, data=data, headers=headers, query_string=params
        )

    def lu_calls(self) -> int:
        return sum(len(s.request_log()) for s in self.portals.values())

    def clear_logs(self) -> None:
        for state in self.portals.values():
            state.clear_log()

    def user(self, portal: str, email: str) -> dict | None:
        return self.portals[portal].find_user(email)


@pytest.fixture
def make_scim(keys, portals, _fake_portals):
    def make(token: str = TOKEN, prefix: str = "/scim/v2", store=None, **overrides: Any) -> Scim:
        config = config_from_dict(scim_config(keys, _fake_portals[1].url, **overrides))
        app = create_app(config, store=store or MemoryStore())
        return Scim(app, app.test_client(), portals, token, prefix)

    return make


@pytest.fixture
def scim(make_scim) -> Scim:
    return make_scim()
