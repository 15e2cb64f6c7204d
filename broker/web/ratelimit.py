"""Per-client-IP rate limits on /login, /admin/login and /saml/acs, counted in the shared store (fixed one-minute windows)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, request

from broker.errors import new_reference
from broker.store import keys
from broker.web.pages import runtime
from broker.web.refusals import http_error_page

log = logging.getLogger("broker.web")

# /admin/login starts a pending login just like /login does, so it shares /login's limit
LIMITED = {
    "login.login": "login_per_minute",
    "admin.login_via_idp": "login_per_minute",
    "acs.acs": "acs_per_minute",
}


def _check() -> Response | None:
    setting = LIMITED.get(request.endpoint or "")
    if setting is None:
        return None
    limits = runtime().config.rate_limits
    limit = getattr(limits, setting)
    if limit == 0:
        return None
    window = int(time.time() // 60)
    count = runtime().store.incr(keys.rate_window(setting, str(request.remote_addr), window), 61)
    if count <= limit:
        return None
    reference = new_reference()
    log.warning("request refused [%s] check=rate_limit reason=%s over %s per minute from %s on %s", reference,
                setting, limit, request.remote_addr, request.path, extra={"reference": reference})  # fmt: skip
    response = http_error_page(429, reference)
    response.headers["Retry-After"] = str(60 - int(time.time()) % 60)
    return response


def register(app: Flask) -> None:
    trusted = runtime_config_proxies(app)
    if trusted:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client IP is the one the last `trusted` proxies saw; anything further left is forgeable.
        # Flask's documented way to add WSGI middleware
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted
        )
    app.before_request(_check)


def runtime_config_proxies(app: Flask) -> int:
    return app.extensions["broker"].config.rate_limits.trusted_proxies
