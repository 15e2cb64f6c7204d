"""A real Prometheus (Debian's) scrapes a running demo broker while logins and refusals go through it; then
every Grafana panel's query and every alert rule is evaluated by that Prometheus: all are valid PromQL there,
and the panels an operator reads first show data."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.demo_servers import sign_in, submit_form

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "learnupon-saml-broker.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus")
# Panels whose data needs a failure or a setup the demo does not have (Graph throttling, LearnUpon errors,
# metadata from a URL): their queries must still be valid, but may be empty.
MAY_BE_EMPTY = {"Microsoft Graph errors and throttling", "LearnUpon API errors", "Upstream metadata age"}

if PROMETHEUS is None:
    if os.environ.get("CI"):
        pytest.fail("CI must run this test, but prometheus is not installed", pytrace=False)
    pytest.skip("prometheus is not installed (apt-get install prometheus)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refuse(broker: str, portal: str, email: str) -> None:
    session = requests.Session()
    login_page = session.get(f"{broker}/login/{portal}", timeout=10)
    assert submit_form(session, submit_form(session, login_page, email=email)).status_code == 403


@pytest.fixture(scope="module")
def prometheus(demo, tmp_path_factory):
    """Prometheus scraping the demo broker every second, with the alert rules; its API URL."""
    folder = tmp_path_factory.mktemp("prometheus")
    broker = demo.urls.broker.removeprefix("http://")
    (folder / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "learnupon-broker", "static_configs": [{"targets": [broker]}]}],
    }))  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(folder / "prometheus.log").open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("prometheus did not start: " + (folder / "prometheus.log").read_text()[-2000:])
        # traffic over several scrapes: logins (provisioned; Graph for Sam, then the Graph cache), refusals
        for _ in range(6):
            sign_in(demo.urls, "academy", "alex.morgan@contoso.example")
            sign_in(demo.urls, "academy", "sam.lee@contoso.example")
            refuse(demo.urls.broker, "sales", "priya.shah@contoso.example")
            time.sleep(1.0)
        time.sleep(3.0)  # the last scrapes
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def query(url: str, expression: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10).json()
    assert answer["status"] == "success", (expression, answer)
    return answer["data"]["result"]


def for_prometheus(expression: str) -> str:
    return expression.replace("$__rate_interval", "30s").replace('=~"$portal"', '=~".*"')


def test_every_panel_query_runs_and_the_main_panels_show_data(prometheus):
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        results = [query(prometheus, for_prometheus(target["expr"])) for target in panel["targets"]]
        if not any(results) and panel["title"] not in MAY_BE_EMPTY:
            empty.append(panel["title"])
    assert empty == []


def test_the_numbers_match_the_traffic(prometheus):
    signed_in = query(prometheus, 'sum(broker_logins_completed_total{portal="academy"})')
    assert float(signed_in[0]["value"][1]) == 12
    refused = query(prometheus, 'sum by (reason) (broker_logins_rejected_total{portal="sales"})')
    assert [(r["metric"]["reason"], float(r["value"][1])) for r in refused] == [("no_access", 6.0)]
    ratio = query(
        prometheus,
        'sum(broker_group_names_total{source="cache"}) / sum(broker_group_names_total{source=~"cache|graph"})',
    )
    assert 0 < float(ratio[0]["value"][1]) < 1  # Sam's first login asked Graph, the later ones hit the cache
    assert float(query(prometheus, "sum(broker_ready)")[0]["value"][1]) == 1


def test_alert_rules_load_and_none_fires_on_a_healthy_broker(prometheus):
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 8 and all(rule["health"] == "ok" for rule in rules), rules
    firing = [rule["name"] for rule in rules if rule["state"] == "firing"]
    assert firing == []
