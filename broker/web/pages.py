"""Rendering with security headers (a per-request CSP nonce), and the admin area's error page."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Flask, Response, current_app, g, render_template

from broker.runtime import Runtime

log = logging.getLogger("broker.web")


def runtime() -> Runtime:
    """The runtime this request uses, read once: a reload swapping in a new one mid-request (another thread,
    SIGHUP) never hands one request two configurations."""
    if "broker_runtime" not in g:
        g.broker_runtime = current_app.extensions["broker"]
    return g.broker_runtime


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(form_action: str = "'self'", img_src: str = "") -> str:
    """`img_src`: one more origin images may come from (a portal's logo URL)."""
    nonce = csp_nonce()
    images = f"'self' data: {img_src}".strip()
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src {images}; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


def page(
    template: str, status: int = 200, *, form_action: str = "'self'", img_src: str = "", **context: object
) -> Response:
    body = render_template(template, nonce=csp_nonce(), **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(form_action, img_src)
    return response


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a submitted secret (CSRF field, token, bearer). Bytes, because
    `hmac.compare_digest` raises on non-ASCII `str` (which would be a 500)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def secure_cookies() -> bool:
    """Cookies are Secure outside the demo (which runs on plain http://127.0.0.1)."""
    return not runtime().config.broker.demo


def error_page(status: int, title: str, message: str, reference: str) -> Response:
    """An admin-area error page (English); learners' pages are in broker.web.refusals."""
    response = page("error.html", status, title=title, message=message, reference=reference)
    response.headers["Cache-Control"] = "no-store"
    return response


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    return response


def register(app: Flask) -> None:
    app.after_request(_security_headers)
