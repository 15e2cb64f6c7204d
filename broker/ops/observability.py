"""Metrics (Prometheus) and structured logs (JSON lines with a request id carried through every step)."""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from broker.runtime import Runtime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

STEP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LOGIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The broker's counters and histograms, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # gauges computed at scrape time from the current runtime (kept apart: with several gunicorn workers
        # the counters come from the multiprocess collector, the gauges from the worker answering the scrape)
        self.runtime_registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.logins_started = Counter("broker_logins_started", "Logins sent to an upstream IdP",
                                      ["portal", "upstream"], registry=r)  # fmt: skip
        self.logins_completed = Counter("broker_logins_completed", "Logins posted to a portal",
                                        ["portal", "upstream"], registry=r)  # fmt: skip
        self.logins_rejected = Counter("broker_logins_rejected", "Logins refused, by reason",
                                       ["portal", "upstream", "reason"], registry=r)  # fmt: skip
        self.replay_rejections = Counter(
            "broker_replay_rejections", "Responses refused as replays", registry=r
        )
        self.step_seconds = Histogram("broker_login_step_seconds", "Time per login step", ["step"],
                                      buckets=STEP_BUCKETS, registry=r)  # fmt: skip
        self.group_names = Counter("broker_group_names", "Group names resolved, by source (static, cache, graph, "
                                   "passthrough, unresolved)", ["source"], registry=r)  # fmt: skip
        self.login_seconds = Histogram("broker_login_seconds", "Time from the IdP's response to the outcome",
                                       ["outcome"], buckets=LOGIN_BUCKETS, registry=r)  # fmt: skip
        self.provisioning = Counter("broker_provisioning", "Pre-provisioning outcomes", ["portal", "status"],
                                    registry=r)  # fmt: skip

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds.labels(name).observe(time.perf_counter() - started)

    def attach(self, runtime_of: Callable[[], Runtime]) -> None:
        """Gauges read at scrape time from the current runtime: certificate expiry, API call counters."""
        self.runtime_registry.register(_RuntimeCollector(runtime_of))


class _RuntimeCollector:
    def __init__(self, runtime_of: Callable[[], Runtime]):
        self._runtime_of = runtime_of

    def describe(self):
        return []

    def collect(self):
        rt = self._runtime_of()
        now = datetime.now(UTC)
        expiry = GaugeMetricFamily("broker_certificate_expiry_days", "Days until a certificate expires",
                                   labels=["kind", "name", "sha1"])  # fmt: skip
        for portal, trust in rt.portal_trust.items():
            cert = trust.key_pair.certificate
            expiry.add_metric(["portal_signing", portal, trust.key_pair.sha1_fingerprint],
                              (cert.not_valid_after_utc - now).total_seconds() / 86400)  # fmt: skip
        for portal, cert in rt.next_certificates.items():
            expiry.add_metric(
                ["portal_next", portal, ""], (cert.not_valid_after_utc - now).total_seconds() / 86400
            )
        for name, upstream in rt.upstreams.items():
            for cert in upstream.certificates:
                serial = format(cert.serial_number, "x")[:16]
                expiry.add_metric([f"upstream_signing:{serial}", name, ""],
                                  (cert.not_valid_after_utc - now).total_seconds() / 86400)  # fmt: skip
        yield expiry
        api = GaugeMetricFamily("broker_learnupon_api_calls", "LearnUpon API calls by outcome (since start)",
                                labels=["portal", "outcome"])  # fmt: skip
        for portal, client in rt.learnupon_clients.items():
            for outcome, count in dict(client.counters).items():
                api.add_metric([portal, str(outcome)], count)
        yield api
        graph = GaugeMetricFamily("broker_graph_requests", "Microsoft Graph requests by call and outcome (since start)",
                                  labels=["upstream", "call", "outcome"])  # fmt: skip
        for upstream, directory in rt.group_directories.items():
            for key, count in dict(getattr(directory, "counters", {})).items():
                call, _, outcome = key.partition(" ")
                graph.add_metric([upstream, call, outcome], count)
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


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


@contextmanager
def diverted_logs(handler: logging.Handler, logger_name: str = "broker") -> Iterator[None]:
    """Within the block, what `logger_name` logs goes only to `handler` (not to the usual output)."""
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def configure_logging(fmt: str | None = None, stream=None, level: int = logging.INFO) -> logging.Handler:
    """JSON lines (production) or text (development); every record carries the request id."""
    fmt = fmt or os.environ.get("BROKER_LOG_FORMAT", "json")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                           rename_fields={"asctime": "time", "levelname": "level"}))  # fmt: skip
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    return handler
