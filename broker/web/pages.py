"""Rendering with security headers, and the error pages every failure path ends in."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import cast
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from broker.errors import LoginRefused, SamlRejected, StoreUnavailable, new_reference
from broker.model import OutgoingLogin
from broker.ops.activity import record_refusal
from broker.runtime import Runtime
from broker.saml.authn_request import UpstreamRequest
from broker.saml.xml import BINDING_REDIRECT
from broker.web.error_table import TABLE, shown_for

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


def content_security_policy(form_action: str = "'self'") -> str:
    nonce = csp_nonce()
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


def page(template: str, status: int = 200, *, form_action: str = "'self'", **context: object) -> Response:
    body = render_template(template, nonce=csp_nonce(), **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(form_action)
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


def autopost_page(outgoing: OutgoingLogin) -> Response:
    """The page that POSTs the signed Response to the portal; works without JavaScript (a button)."""
    target = urlsplit(outgoing.acs_url)
    display = runtime().config.portals[outgoing.portal].display_name or outgoing.portal
    response = page(
        "autopost.html",
        form_action=f"{target.scheme}://{target.netloc}",
        outgoing=outgoing,
        portal_name=display,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def to_upstream(sent: UpstreamRequest) -> Response:
    """Send the browser to the upstream IdP: a redirect, or (HTTP-POST binding) a form that submits itself,
    and works without JavaScript (a button)."""
    if sent.binding == BINDING_REDIRECT:
        response = cast(Response, redirect(sent.url, code=302))  # a Flask response (app.response_class)
    else:
        target = urlsplit(sent.url)
        response = page(
            "upstream_post.html",
            form_action=f"{target.scheme}://{target.netloc}",
            action=sent.url,
            fields=sent.fields,
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(status: int, title: str, message: str, reference: str) -> Response:
    response = page("error.html", status, title=title, message=message, reference=reference)
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_refused(exc: LoginRefused) -> Response:
    what = "SAML response rejected" if isinstance(exc, SamlRejected) else "login refused"
    log.warning(
        "%s [%s] check=%s reason=%s",
        what,
        exc.reference,
        exc.check,
        exc.reason,
        extra={"reference": exc.reference, "check": exc.check, "path": request.path},
    )
    record_refusal(runtime(), exc, request.path)
    shown = shown_for(type(exc)) or TABLE[LoginRefused]
    return error_page(shown.status, shown.title, shown.text_for(exc, lambda: runtime().config), exc.reference)


def _store_unavailable(exc: StoreUnavailable) -> Response:
    reference = new_reference()
    log.error("state store unavailable [%s] %s", reference, exc, extra={"reference": reference})
    shown = shown_for(type(exc)) or TABLE[StoreUnavailable]
    response = error_page(shown.status, shown.title, shown.text_for(exc, lambda: runtime().config), reference)
    response.headers["Retry-After"] = "60"
    return response


def _too_large(exc: RequestEntityTooLarge) -> Response:
    reference = new_reference()
    log.warning("request refused [%s] check=size reason=body larger than %s bytes on %s", reference,
                current_app.config.get("MAX_CONTENT_LENGTH"), request.path)  # fmt: skip
    return error_page(413, "Request too large", "The sign-in response was too large to accept.", reference)


def _http_error(exc: HTTPException) -> Response:
    reference = new_reference()
    log.info("%s %s -> %s [%s]", request.method, request.path, exc.code, reference)
    return error_page(exc.code or 400, exc.name, exc.description or exc.name, reference)


def _unexpected(exc: Exception) -> Response:
    reference = new_reference()
    log.exception("unexpected error [%s] on %s %s", reference, request.method, request.path)
    return error_page(500, "Something went wrong", "Please try again; if it keeps happening, contact support.",
                      reference)  # fmt: skip


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    return response


def register(app: Flask) -> None:
    app.register_error_handler(LoginRefused, _login_refused)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_security_headers)
