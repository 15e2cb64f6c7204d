"""The monitoring files in deploy/: every metric the Grafana dashboard and the alert rules query is one the
broker really exports (read from a running demo's /metrics after a login and a refusal), the rules load and
their unit tests pass in promtool, and the compose profile wires Prometheus and Grafana to them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.demo_servers import sign_in, submit_form

promql_parser = pytest.importorskip("promql_parser", reason="promql-parser (pip) is not installed")

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "learnupon-saml-broker.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_ONLY = {"up"}  # series Prometheus makes itself for every target
ADDED_BY_PROMETHEUS = {"job", "instance"}
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def exported(demo) -> dict[str, set[str] | None]:
    """Metric name → its label names (None when the family is declared but has no sample yet)."""
    sign_in(demo.urls, "academy", "alex.morgan@contoso.example")
    session = requests.Session()
    login_page = session.get(f"{demo.urls.broker}/login/sales", timeout=10)
    refused = submit_form(session, submit_form(session, login_page, email="priya.shah@contoso.example"))
    assert refused.status_code == 403  # Priya is in no Sales group
    text = requests.get(f"{demo.urls.broker}/metrics", timeout=10).text
    names: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        for suffix in suffixes:
            names.setdefault(family.name + suffix, None)
        for sample in family.samples:
            labels = names.get(sample.name) or set()
            names[sample.name] = labels | set(sample.labels)
    return names


def selectors(expression: str) -> list[tuple[str, list[str]]]:
    """(metric name, label names matched) of every series selector in a PromQL expression."""
    found: list[tuple[str, list[str]]] = []

    def walk(node: object) -> None:
        if type(node).__name__ == "VectorSelector":
            found.append((node.name, [m.name for m in node.matchers.matchers]))
            return
        for attribute in ("lhs", "rhs", "expr", "vector_selector", "param", "args"):
            child = getattr(node, attribute, None)
            for item in child if isinstance(child, list | tuple) else [child]:
                if item is not None and not isinstance(item, str | int | float):
                    walk(item)

    walk(promql_parser.parse(expression))
    return found


def grafana_to_promql(expression: str) -> str:
    """Grafana's variables replaced by values Prometheus would see."""
    expression = expression.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?\w+\}?", ".*", expression)


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])[1]
            found.append((f"variable {variable['name']}", metric))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def unknown_names(expressions: list[tuple[str, str]], exported: dict[str, set[str] | None]) -> list[str]:
    problems = []
    for where, expression in expressions:
        for name, labels in selectors(grafana_to_promql(expression)):
            if name in PROMETHEUS_ONLY:
                continue
            if name not in exported:
                problems.append(f"{where}: {name} is not exported")
                continue
            known = exported[name]
            for label in labels:
                if known is not None and label not in known | ADDED_BY_PROMETHEUS:
                    problems.append(f"{where}: {name} has no label {label!r} (has {sorted(known)})")
    return problems


def test_the_check_itself_catches_a_wrong_name_and_a_wrong_label(exported):
    wrong = [("typo", "rate(broker_logins_complete_total[5m])"),
             ("label", 'broker_provisioning_total{state="failed"}')]  # fmt: skip
    assert unknown_names(wrong, exported) == [
        "typo: broker_logins_complete_total is not exported",
        "label: broker_provisioning_total has no label 'state' (has ['portal', 'status'])",
    ]


def test_every_dashboard_query_names_exported_metrics_and_labels(exported):
    expressions = dashboard_expressions()
    assert len(expressions) >= 15
    assert unknown_names(expressions, exported) == []


def test_every_alert_names_exported_metrics_and_labels(exported):
    expressions = alert_expressions()
    assert {name for name, _ in expressions} >= {
        "BrokerRefusalRateSpike", "BrokerLearnUponApiErrors", "BrokerGraphThrottled",
        "BrokerCertificateExpiringSoon", "BrokerMetadataRefreshFailing", "BrokerNotReady",
    }  # fmt: skip
    assert unknown_names(expressions, exported) == []


def test_dashboard_covers_what_an_operator_asks_first():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    text = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for metric in (
        "broker_logins_completed_total",
        "broker_logins_rejected_total",
        "broker_login_seconds_bucket",
        "broker_login_step_seconds_bucket",
        "broker_graph_requests",
        "broker_learnupon_api_calls",
        "broker_group_names_total",
        "broker_provisioning_total",
        "broker_certificate_expiry_days",
    ):
        assert metric in text, metric  # fmt: skip
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    assert dashboard["uid"] == "learnupon-saml-broker"


needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="promtool not installed (apt-get install prometheus)",
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None, "CI must check the alert rules, but promtool is not installed"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


@needs_promtool
def test_alert_rules_load_and_their_unit_tests_pass():
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(ALERTS.with_name("alerts.test.yml")))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_prometheus_config_of_the_compose_profile_is_valid(tmp_path):
    config = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
    token = tmp_path / "metrics-token"
    token.write_text("test-token")
    config = config.replace("/etc/prometheus/alerts.yml", str(ALERTS)).replace(
        "/prometheus/metrics-token", str(token)
    )
    (tmp_path / "prometheus.yml").write_text(config)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_monitoring_profile_mounts_the_checked_files():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), "this host only"
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), volume
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    brokers = [name for name, service in services.items() if service.get("build") == "."]
    assert sorted(targets) == sorted(f"{name}:8000" for name in brokers)
    assert prometheus["scrape_configs"][0]["job_name"] == "learnupon-broker"  # what BrokerDown selects
    for name in brokers:
        assert "BROKER_METRICS_TOKEN" in services[name]["environment"]
    provisioned = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/broker.yml").read_text())
    assert provisioned["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
