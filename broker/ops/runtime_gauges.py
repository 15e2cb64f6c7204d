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
        yield from _guard_metrics(rt)
        yield from _job_metrics(rt)


def _job_metrics(rt: Runtime):
    from broker.jobs.queue import overview

    jobs = GaugeMetricFamily("broker_jobs", "Background jobs by state (queued, running, scheduled for a retry, "
                             "failed, finished), in the queue or this process", labels=["state"])  # fmt: skip
    try:
        # a stalled (frozen) Redis: no RQ call that would hold this thread for the socket timeout
        stalled = getattr(rt.store, "stalled", None)
        counts = {} if stalled is not None and stalled() else overview(rt.store, details=False).counts
    except Exception:  # noqa: BLE001 - a scrape while Redis is down still shows the other metrics
        counts = {}
    for state, count in counts.items():
        jobs.add_metric([state], count)
    yield jobs


_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


def _guard_metrics(rt: Runtime):
    from broker.ops.readiness import guard_statuses

    state = GaugeMetricFamily("broker_outbound_circuit_state", "Circuit breaker per outside service: "
                              "0 closed, 1 half-open, 2 open", labels=["service"])  # fmt: skip
    in_flight = GaugeMetricFamily("broker_outbound_in_flight", "Calls in flight per outside service "
                                  "(this process)", labels=["service"])  # fmt: skip
    refused = GaugeMetricFamily("broker_outbound_refused", "Calls refused without trying, by reason "
                                "(bulkhead_full, circuit_open), since start", labels=["service", "reason"])  # fmt: skip
    for status in guard_statuses(rt):
        state.add_metric([status.service], _STATE_VALUES[status.state])
        in_flight.add_metric([status.service], status.in_flight)
        for reason, count in status.refused.items():
            refused.add_metric([status.service, reason], count)
    yield state
    yield in_flight
    yield refused
