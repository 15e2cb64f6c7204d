"""Per-client-IP rate limits on /login, /admin/login, /saml/acs and the portal picker's answer, counted in the
shared store (fixed one-minute windows)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from broker.errors import new_reference
from broker.pending import pending_key
from broker.store import keys
from broker.web.pages import runtime
from broker.web.refusals import http_error_page

log = logging.getLogger("broker.web")

# endpoint → (the setting that limits it, the counter it counts on). /admin/login starts a pending login just
# like /login does, so it shares /login's counter. The picker's answer and its continue link read the store
# like the ACS does, under the ACS's limit, on a counter of their own (a picker login is not three ACS posts).
LIMITED = {
    "login.login": ("login_per_minute", "login_per_minute"),
    "admin.login_via_idp": ("login_per_minute", "login_per_minute"),
    "acs.acs": ("acs_per_minute", "acs_per_minute"),
    "login.choose": ("acs_per_minute", "picker"),
    "login.continue_to_portal": ("acs_per_minute", "picker"),
}


def _read_with_count() -> str | None:
    """The ACS reads its pending login right after this check: the count and that read share one store round
    trip (an ACS POST is the login's critical path), and the view takes the value from `counted_read`."""
    if request.endpoint != "acs.acs":
        return None
    try:
        return pending_key(request.form.get("RelayState"))
    except HTTPException:  # a body too large to parse (413): counted all the same, refused by the view
        return None


def counted_read(key: str) -> bytes | None:
    """The value of `key` read with this request's count (once), or (another key, no count made) read now."""
    read = g.pop("counted_read", None)
    if read is not None and read[0] == key:
        return read[1]
    return runtime().store.get(key)


def _count(counter_key: str) -> int:
    read_key = _read_with_count()
    if read_key is None:
        return runtime().store.incr(counter_key, 61)
    count, value = runtime().store.incr_and_get(counter_key, 61, read_key)
    g.counted_read = (read_key, value)
    return count


def _check() -> Response | None:
    limited = LIMITED.get(request.endpoint or "")
    if limited is None:
        return None
    setting, counter = limited
    limits = runtime().config.rate_limits
    limit = getattr(limits, setting)
    if limit == 0:
        return None
    window = int(time.time() // 60)
    count = _count(keys.rate_window(counter, str(request.remote_addr), window))
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
