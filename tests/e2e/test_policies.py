"""Failure policies seen from the browser: group names that cannot be resolved, LearnUpon that is slow or
down. The outside services are the fakes, served over loopback HTTP, with faults injected."""

from __future__ import annotations

import re

import pytest

from broker.demo.fake_graph import create_fake_graph
from broker.demo.webserver import BackgroundServer
from tests.harness import ALEX, TENANT, Harness

GRAPH_CLIENT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


@pytest.fixture
def graph(monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_SECRET", "graph-secret")
    app = create_fake_graph(TENANT, GRAPH_CLIENT, "graph-secret", {ALEX.groups[0]: "Sales Team"})
    with BackgroundServer(app) as server:
        yield server.url, app.extensions["fake_graph"]


def groups_setting(url: str, on_unresolved: str) -> dict:
    return {"on_unresolved": on_unresolved, "budget_seconds": 1.0,
            "graph": {"tenant_id": TENANT, "client_id": GRAPH_CLIENT, "client_secret_env": "TEST_GRAPH_SECRET",
                      "login_base": url, "graph_base": url}}  # fmt: skip


def provisioning_setting(url: str, on_failure: str) -> dict:
    return {"enabled": True, "base_url": url, "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY",
            "on_failure": on_failure, "budget_seconds": 1.0}  # fmt: skip


def login(harness: Harness):
    pending = harness.login()
    return harness.post(harness.valid_response(pending), pending.relay_state)


def sent_groups(reply) -> list[str]:
    import base64

    document = base64.b64decode(
        re.search(r'name="SAMLResponse" value="([^"]+)"', reply.get_data(as_text=True))[1]
    )
    block = re.search(rb'Name="groups">(.*?)</saml:Attribute>', document, re.S)
    return [v.decode() for v in re.findall(rb">([^<]+)</saml:AttributeValue>", block[1])] if block else []


def test_graph_down_under_drop_still_logs_in_without_the_unknown_group(keys, graph):
    url, control = graph
    control.fail_next(50, status=503)
    harness = Harness(keys, config_overrides={"upstreams__entra__groups": groups_setting(url, "drop")})
    reply = login(harness)
    assert reply.status_code == 200
    assert sent_groups(reply) == []  # the GUID could not be named: dropped, logged


def test_graph_down_under_fail_shows_a_clear_page(keys, graph):
    url, control = graph
    control.fail_next(50, status=503)
    harness = Harness(keys, config_overrides={"upstreams__entra__groups": groups_setting(url, "fail")})
    reply = login(harness)
    assert reply.status_code == 503
    body = reply.get_data(as_text=True)
    assert 'name="SAMLResponse"' not in body and 'class="ref"' in body


def test_graph_429_with_retry_after_is_waited_out(keys, graph):
    url, control = graph
    control.fail_next(1, status=429, retry_after=0.3, endpoint="getByIds")
    harness = Harness(keys, config_overrides={"upstreams__entra__groups": groups_setting(url, "fail")})
    reply = login(harness)
    assert reply.status_code == 200 and sent_groups(reply) == ["Sales Team"]
    metrics = harness.client.get("/metrics").get_data(as_text=True)
    assert 'broker_graph_requests{call="getByIds",outcome="http_429",upstream="entra"} 1.0' in metrics
    assert 'broker_graph_requests{call="getByIds",outcome="ok",upstream="entra"} 1.0' in metrics
    assert 'broker_group_names_total{source="graph"} 1.0' in metrics


def test_learnupon_timeout_under_continue_still_logs_in(keys, learnupon):
    url, state = learnupon
    state.delay(3.0)
    harness = Harness(
        keys, config_overrides={"portals__academy__provisioning": provisioning_setting(url, "continue")}
    )
    reply = login(harness)
    assert reply.status_code == 200 and 'name="SAMLResponse"' in reply.get_data(as_text=True)


def test_learnupon_timeout_under_block_shows_the_error_page(keys, learnupon):
    url, state = learnupon
    state.delay(3.0)
    harness = Harness(
        keys, config_overrides={"portals__academy__provisioning": provisioning_setting(url, "block")}
    )
    reply = login(harness)
    assert reply.status_code == 503  # "try again": the portal could not be prepared in time
    body = reply.get_data(as_text=True)
    assert 'name="SAMLResponse"' not in body and 'class="ref"' in body


def test_learnupon_5xx_then_recovery_provisions_before_the_assertion(keys, learnupon):
    url, state = learnupon
    state.fail_next(1, status=502)
    harness = Harness(
        keys, config_overrides={"portals__academy__provisioning": provisioning_setting(url, "block")}
    )
    reply = login(harness)
    assert reply.status_code == 200
    assert state.find_user(ALEX.email) is not None
