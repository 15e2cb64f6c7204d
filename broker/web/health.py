"""Health and metrics: /healthz (the process is up), /readyz (ready for logins), /metrics (Prometheus)."""

from __future__ import annotations

import os

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import Forbidden

from broker.ops.readiness import readiness
from broker.web.pages import runtime, same_secret

bp = Blueprint("health", __name__)

METRICS_TOKEN_ENV = "BROKER_METRICS_TOKEN"  # noqa: S105 (a variable name)
LOOPBACK = ("127.0.0.1", "::1")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    ready, body = readiness(runtime())
    return body, 200 if ready else 503


@bp.get("/metrics")
def metrics():
    """Bearer token when BROKER_METRICS_TOKEN is set; otherwise only scrapers on this host."""
    token = os.environ.get(METRICS_TOKEN_ENV)
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not same_secret(sent, token):
            raise Forbidden("metrics need the bearer token")
    elif request.remote_addr not in LOOPBACK:
        raise Forbidden("metrics are served to this host only (set BROKER_METRICS_TOKEN to scrape remotely)")
    metrics = runtime().metrics
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # gunicorn with several workers: every worker's counters, plus this worker's scrape-time gauges
        from prometheus_client import multiprocess

        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
    else:
        counters = metrics.registry
    body = generate_latest(counters) + generate_latest(metrics.runtime_registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
