"""The Flask app factory: configuration first, then the runtime, then blueprints. Nothing at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Flask

from broker.config import Config, load_config
from broker.runtime import Runtime, build_runtime
from broker.store import Store
from broker.web import acs, health, login, metadata, pages


def create_app(
    config: Config | str | Path,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    if not isinstance(config, Config):
        config = load_config(config)
    runtime: Runtime = build_runtime(config, store=store, **({"clock": clock} if clock else {}))
    app = Flask(__name__)
    # A SAMLResponse is base64 (4/3 larger) plus RelayState; anything larger is refused with 413 before parsing.
    app.config["MAX_CONTENT_LENGTH"] = config.broker.max_response_bytes * 4 // 3 + 4096
    app.extensions["broker"] = runtime
    pages.register(app)
    for blueprint in (login.bp, acs.bp, metadata.bp, health.bp):
        app.register_blueprint(blueprint)
    logging.getLogger("broker").setLevel(logging.INFO)
    return app
