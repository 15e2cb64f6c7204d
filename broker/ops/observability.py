"""Metrics (Prometheus) and structured logs (JSON lines with a request id carried through every step)."""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter

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
        self._steps: dict[str, Any] = {}
        self.step_seconds = Histogram("broker_login_step_seconds", "Time per login step", ["step"],
                                      buckets=STEP_BUCKETS, registry=r)  # fmt: skip
        self.group_names = Counter("broker_group_names", "Group names resolved, by source (static, cache, graph, "
                                   "passthrough, unresolved)", ["source"], registry=r)  # fmt: skip
        self.login_seconds = Histogram("broker_login_seconds", "Time from the IdP's response to the outcome",
                                       ["outcome"], buckets=LOGIN_BUCKETS, registry=r)  # fmt: skip
        self.provisioning = Counter("broker_provisioning", "Pre-provisioning outcomes", ["portal", "status"],
                                    registry=r)  # fmt: skip
        self.expired_certificate_logins = Counter(
            "broker_upstream_expired_certificate_logins",
            "Logins accepted with an upstream signing certificate past its end date (metadata lists it)",
            ["upstream"], registry=r,
        )  # fmt: skip

    def step_histogram(self, name: str) -> Any:
        """The step's histogram child, looked up once per step name (a labels() call per step per login showed
        in the login's profile)."""
        child = self._steps.get(name)
        if child is None:
            child = self._steps[name] = self.step_seconds.labels(name)
        return child

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds.labels(name).observe(time.perf_counter() - started)

    def attach(self, collector: Collector) -> None:
        """Gauges read at scrape time (broker.ops.runtime_gauges: certificate expiry, API call counters)."""
        self.runtime_registry.register(collector)


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
