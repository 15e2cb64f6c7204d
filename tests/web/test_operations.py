"""Operations: readiness and the 503 page while Redis is down, metrics, JSON logs and audit events, reload."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import time

import pytest
import yaml

from broker.app import create_app
from broker.config import load_config
from broker.ops.observability import configure_logging
from broker.store.connect import open_store
from tests.conftest import RedisServer, start_redis_server
from tests.harness import Harness, base_config


@pytest.fixture
def private_redis(tmp_path):
    try:
        server = start_redis_server(tmp_path)
    except (FileNotFoundError, TimeoutError) as exc:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"CI must run this test: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


def restart(server: RedisServer, folder) -> None:
    binary = server.process.args[0]
    server.process = subprocess.Popen(
        [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.redis
def test_redis_outage_gives_503_and_not_ready_then_recovers_without_restart(keys, private_redis, tmp_path):
    harness = Harness(keys, store=open_store(private_redis.url))
    assert harness.client.get("/readyz").status_code == 200
    pending = harness.login()

    private_redis.stop()
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["store"] is False
    login = harness.client.get("/login/academy")
    assert login.status_code == 503
    assert "try again in a minute" in login.get_data(as_text=True)
    assert login.headers["Retry-After"] == "60"
    acs = harness.post(harness.valid_response(pending), pending.relay_state)
    assert acs.status_code == 503  # nothing half-written: the response was not consumed

    restart(private_redis, tmp_path)
    deadline = time.monotonic() + 10
    while harness.client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readiness did not recover"
        time.sleep(0.2)
    fresh = harness.login()
    assert harness.post(harness.valid_response(fresh), fresh.relay_state).status_code == 200


@pytest.mark.redis
def test_readyz_fails_on_an_evicting_redis_and_reports_missing_persistence(keys, private_redis):
    import redis

    harness = Harness(keys, store=open_store(private_redis.url))
    ready = harness.client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["store_durability"] is True
    assert ready.json["store"]["persistence"] == "none" and ready.json["store"]["warnings"]
    redis.Redis.from_url(private_redis.url).config_set("maxmemory-policy", "volatile-lru")
    harness.runtime.durability_probe.checked = -1e9  # read again now, not in 30 s
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["store_durability"] is False
    assert "volatile-lru" in ready.json["store"]["errors"][0]


def metric(text: str, metric_name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(metric_name + "{") and not line.startswith(metric_name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_logins_rejections_steps_and_certificates(keys):
    harness = Harness(keys)
    before = harness.client.get("/metrics").get_data(as_text=True)
    pending = harness.login()
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200
    bad = harness.login()
    harness.post(harness.valid_response(bad, audience="https://other.test"), bad.relay_state)
    after = harness.client.get("/metrics").get_data(as_text=True)
    labels = {"portal": "academy", "upstream": "entra"}
    assert (
        metric(after, "broker_logins_started_total", **labels)
        == metric(before, "broker_logins_started_total", **labels) + 2
    )
    assert metric(after, "broker_logins_completed_total", **labels) == 1
    assert metric(after, "broker_logins_rejected_total", reason="audience", **labels) == 1
    assert metric(after, "broker_login_step_seconds_count", step="validate") == 2
    assert metric(after, "broker_login_step_seconds_count", step="issue") == 1
    assert (
        metric(after, "broker_group_names_total", source="unresolved") == 1
    )  # a GUID, and no static map here
    days = metric(after, "broker_certificate_expiry_days", kind="portal_signing", name="academy")
    assert 300 < days < 3 * 366


def test_metrics_are_not_served_to_other_hosts_without_the_token(keys, monkeypatch):
    client = Harness(keys).client
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    monkeypatch.setenv("BROKER_METRICS_TOKEN", "scrape-token")
    assert client.get("/metrics").status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"},
                    environ_base={"REMOTE_ADDR": "10.1.2.3"})  # fmt: skip
    assert ok.status_code == 200


def test_logs_are_json_lines_with_request_ids_and_audit_events_without_secrets(keys, monkeypatch):
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    try:
        harness = Harness(keys)
        pending = harness.login()
        response = harness.valid_response(pending)
        ok = harness.post(response, pending.relay_state)
        refused = harness.post(response, pending.relay_state)  # replay
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    audit = [line for line in lines if line.get("name") == "broker.ops.audit"]
    login = next(line for line in audit if line["message"] == "login")
    assert login["audit"]["email"] == "alex@contoso.example"
    assert login["audit"]["portal"] == "academy" and login["audit"]["upstream"] == "entra"
    assert login["audit"]["reference"] == ok.headers["X-Request-ID"] == login["request_id"]
    rejected = next(line for line in audit if line["message"] == "login.rejected")
    assert rejected["audit"]["reason"] == "expired"  # the pending login was consumed by the first post
    assert rejected["request_id"] == refused.headers["X-Request-ID"]
    text = stream.getvalue()
    outgoing = re.search(r'name="SAMLResponse" value="([^"]+)"', ok.get_data(as_text=True))[1]
    for secret in (response[:40], outgoing[:40], "SignatureValue", "BEGIN", "PRIVATE KEY"):
        assert secret not in text


def test_reload_applies_a_valid_config_and_keeps_the_old_one_when_invalid(keys, tmp_path, monkeypatch):
    path = tmp_path / "broker.yaml"
    data = base_config(keys)
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    app = create_app(load_config(path))
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # admin cookies are Secure outside the demo
    index = client.get("/admin/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', index.get_data(as_text=True))[1]
    assert (
        client.post("/admin/login/token", data={"csrf": csrf, "token": "bootstrap-secret"}).status_code == 303
    )
    # signing in starts a fresh session, with a fresh CSRF token
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]

    data["portals"]["academy"]["display_name"] = "Renamed Academy"
    path.write_text(yaml.safe_dump(data))
    done = client.post("/admin/reload", data={"csrf": csrf})
    assert done.status_code == 200
    assert app.extensions["broker"].config.portals["academy"].display_name == "Renamed Academy"

    path.write_text("broker: [this is not valid")
    refused = client.post("/admin/reload", data={"csrf": csrf})
    assert refused.status_code == 422
    assert "not valid YAML" in refused.get_data(as_text=True)
    assert app.extensions["broker"].config.portals["academy"].display_name == "Renamed Academy"
    assert client.get("/login/academy").status_code == 302  # still serving with the old configuration


def test_sighup_reloads_when_installed(keys, tmp_path):
    import os
    import signal

    path = tmp_path / "broker.yaml"
    data = base_config(keys)
    path.write_text(yaml.safe_dump(data))
    app = create_app(load_config(path), install_sighup=True)
    try:
        data["portals"]["academy"]["display_name"] = "After SIGHUP"
        path.write_text(yaml.safe_dump(data))
        os.kill(os.getpid(), signal.SIGHUP)
        assert app.extensions["broker"].config.portals["academy"].display_name == "After SIGHUP"
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_admin_shows_upstream_certificates_and_fetches_metadata_on_demand(keys, monkeypatch):
    from flask import Flask

    from broker.demo.webserver import BackgroundServer
    from broker.keys import fingerprint
    from broker.saml.metadata import idp_metadata
    from tests.harness import IDP_ENTITY, IDP_SSO

    published = {"body": idp_metadata(IDP_ENTITY, IDP_SSO, [keys.idp])}
    site = Flask("metadata-site")
    site.get("/metadata.xml")(lambda: published["body"])
    monkeypatch.setenv("BROKER_ADMIN_TOKEN", "bootstrap-secret")
    with BackgroundServer(site) as server:
        harness = Harness(keys, config_overrides={"upstreams__entra": {"preset": "entra",
                                                                       "metadata_url": server.url + "/metadata.xml"}})  # fmt: skip
        client = harness.client
        client.environ_base["wsgi.url_scheme"] = "https"
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))[1]
        client.post("/admin/login/token", data={"csrf": csrf, "token": "bootstrap-secret"})
        index = client.get("/admin/").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', index)[1]
        assert fingerprint(keys.idp.certificate, "sha256") in index
        assert "last fetched" in index

        published["body"] = idp_metadata(IDP_ENTITY, IDP_SSO, [keys.idp, keys.idp_next])  # rollover begins
        fetched = client.post("/admin/upstreams/entra/refresh", data={"csrf": csrf})
        assert fetched.status_code == 200 and "in use" in fetched.get_data(as_text=True)
        assert fingerprint(keys.idp_next.certificate, "sha256") in client.get("/admin/").get_data(
            as_text=True
        )

        published["body"] = b"<not metadata"
        kept = client.post("/admin/upstreams/entra/refresh", data={"csrf": csrf})
        assert kept.status_code == 502 and "last good copy kept" in kept.get_data(as_text=True)
        assert harness.runtime.upstreams["entra"].idp.certificates == (
            keys.idp.certificate,
            keys.idp_next.certificate,
        )
        harness.runtime.metadata_refresher.stop()
