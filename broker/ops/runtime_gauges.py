"""Gauges computed at scrape time from the current runtime: readiness (as /readyz), certificate expiry,
LearnUpon and Graph call counters, upstream metadata freshness. Registered by the app (Metrics.attach), read from whatever runtime is
current (a reload swaps it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily

from broker.ops.readiness import readiness
from broker.runtime import Runtime


class RuntimeGauges:
    def __init__(self, runtime_of: Callable[[], Runtime]):
        self._runtime_of = runtime_of

    def describe(self):
        return []

    def collect(self):
        rt = self._runtime_of()
        now = datetime.now(UTC)
        ready, body = readiness(rt)
        gauge = GaugeMetricFamily("broker_ready", "1 when this replica is ready for logins (as /readyz)")
        gauge.add_metric([], 1.0 if ready else 0.0)
        yield gauge
        checks = GaugeMetricFamily(
            "broker_ready_check", "Each /readyz check: 1 passing, 0 failing", labels=["check"]
        )
        for check, ok in body["checks"].items():
            checks.add_metric([check], 1.0 if ok else 0.0)
        yield checks
        expiry = GaugeMetricFamily("broker_certificate_expiry_days", "Days until a certificate expires",
                                   labels=["kind", "name", "sha1"])  # fmt: skip
        for name, portal in rt.portals.items():
            cert = portal.trust.key_pair.certificate
            expiry.add_metric(["portal_signing", name, portal.trust.key_pair.sha1_fingerprint],
                              (cert.not_valid_after_utc - now).total_seconds() / 86400)  # fmt: skip
            if portal.next_certificate is not None:
                days = (portal.next_certificate.not_valid_after_utc - now).total_seconds() / 86400
                expiry.add_metric(["portal_next", name, ""], days)
        for name, upstream in rt.upstreams.items():
            for cert in upstream.idp.certificates:
                serial = format(cert.serial_number, "x")[:16]
                expiry.add_metric([f"upstream_signing:{serial}", name, ""],
                                  (cert.not_valid_after_utc - now).total_seconds() / 86400)  # fmt: skip
        yield expiry
        api = GaugeMetricFamily("broker_learnupon_api_calls", "LearnUpon API calls by outcome (since start)",
                                labels=["portal", "outcome"])  # fmt: skip
        for name, portal in rt.portals.items():
            for outcome, count in dict(portal.learnupon.counters if portal.learnupon else {}).items():
                api.add_metric([name, str(outcome)], count)
        yield api
        graph = GaugeMetricFamily("broker_graph_requests", "Microsoft Graph requests by call and outcome (since start)",
                                  labels=["upstream", "call", "outcome"])  # fmt: skip
        for name, upstream in rt.upstreams.items():
            for key, count in dict(getattr(upstream.directory, "counters", {})).items():
                call, _, outcome = key.partition(" ")
                graph.add_metric([name, call, outcome], count)
        yield graph
        refresher = rt.metadata_refresher
        if refresher is not None:
            success = GaugeMetricFamily("broker_upstream_metadata_last_success_timestamp",
                                        "When the upstream's metadata was last fetched", labels=["upstream"])  # fmt: skip
            failures = GaugeMetricFamily("broker_upstream_metadata_consecutive_failures",
                                         "Failed metadata refreshes since the last success", labels=["upstream"])  # fmt: skip
            for name, status in refresher.status().items():
                if status.last_success is not None:
                    success.add_metric([name], status.last_success.timestamp())
                failures.add_metric([name], status.consecutive_failures)
            yield success
            yield failures
