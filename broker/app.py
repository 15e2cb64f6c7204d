"""The Flask app factory: configuration first, then the runtime, then blueprints. Nothing at import time."""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Flask, request

from broker.clients import guard
from broker.clients.http import set_request_deadline
from broker.config import Config, load_config
from broker.errors import StoreUnavailable
from broker.ops.observability import request_id
from broker.ops.reload import Reloader
from broker.ops.runtime_gauges import RuntimeGauges
from broker.runtime import Runtime, build_runtime
from broker.store import Store
from broker.store import bulkhead as store_bulkhead
from broker.web import (
    acs,
    activity,
    admin,
    health,
    health_admin,
    i18n,
    jobs,
    learner,
    login,
    metadata,
    pages,
    ratelimit,
    refusals,
    review,
    scim,
)

log = logging.getLogger("broker.app")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _secret_key(config: Config) -> bytes:
    """Signs the session cookie (remembered IdP choice). Replicas must share it: set it in the environment."""
    value = os.environ.get(config.broker.secret_key_env)
    if value:
        return value.encode()
    if not config.broker.demo:
        log.warning(
            "%s is not set: using a random key, so remembered sign-in choices last only until restart and are "
            "not shared between replicas", config.broker.secret_key_env,
        )  # fmt: skip
    return secrets.token_bytes(32)


def create_app(
    config: Config | str | Path,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    install_sighup: bool = False,
) -> Flask:
    if not isinstance(config, Config):
        config = load_config(config)
    runtime: Runtime = build_runtime(config, store=store, clock=clock)
    try:
        # written on first use; from then on a missing epoch means the store lost its data
        runtime.store.epoch()
    except StoreUnavailable as exc:
        log.warning("state store not reachable at start (logins answer 503 until it is): %s", exc)
    app = Flask(__name__)
    # A SAMLResponse is base64 (4/3 larger) plus RelayState; anything larger is refused with 413 before parsing.
    app.config["MAX_CONTENT_LENGTH"] = config.broker.max_response_bytes * 4 // 3 + 4096
    app.extensions["broker"] = runtime
    app.secret_key = _secret_key(config)
    app.config.update(
        SESSION_COOKIE_NAME="broker_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not config.broker.demo,
        PERMANENT_SESSION_LIFETIME=60 * config.admin.session_minutes,
    )
    runtime.metrics.attach(RuntimeGauges(lambda: app.extensions["broker"]))
    if runtime.metadata_refresher is not None:
        runtime.metadata_refresher.start()
    reloader = Reloader(app)
    app.extensions["broker_reloader"] = reloader

    threads = os.environ.get("BROKER_THREADS", "")  # exported by deploy/gunicorn.conf.py
    spare_one = max(1, int(threads) - 1) if threads.isdigit() and int(threads) > 1 else None
    guard.set_process_limit(spare_one)  # outside calls, and
    store_bulkhead.set_process_limit(spare_one)  # store calls each leave one thread for /healthz and /readyz

    @app.before_request
    def _start_request() -> None:
        # outside calls made for this request end by its deadline, counted from now (its arrival)
        arrived = time.monotonic()
        incoming = request.headers.get("X-Request-ID", "")
        request_id.set(incoming if REQUEST_ID.match(incoming) else secrets.token_hex(8))
        if request.path not in ("/healthz", "/readyz", "/metrics"):  # never waiting on a frozen Redis
            reloader.maybe_reload()
        set_request_deadline(arrived + app.extensions["broker"].outbound_deadline_seconds)

    @app.teardown_request
    def _end_request(_exc: BaseException | None) -> None:
        set_request_deadline(None)  # the thread serves other requests next

    @app.after_request
    def _tag_response(response):
        response.headers["X-Request-ID"] = request_id.get()
        return response

    pages.register(app)
    refusals.register(app)
    i18n.register(app)
    ratelimit.register(app)
    for blueprint in (
        login.bp,
        learner.bp,
        acs.bp,
        metadata.bp,
        health.bp,
        admin.bp,
        activity.bp,
        health_admin.bp,
        review.bp,
        scim.bp,
        jobs.bp,
    ):
        app.register_blueprint(blueprint)
    logging.getLogger("broker").setLevel(logging.INFO)
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread() and install_sighup:
        signal.signal(signal.SIGHUP, lambda *_: reloader.reload("SIGHUP"))
    return app
