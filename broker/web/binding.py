"""Login CSRF: a pending login is bound to the browser that started it. The browser gets a random cookie, the
pending login keeps only its hash, and a response that arrives in another browser (one an attacker made
POST their own signed response) is refused. IdP-initiated logins have no pending login to bind."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from flask import Response, g, request

from broker.model import PendingLogin
from broker.pending import OtherBrowser
from broker.web.pages import runtime, secure_cookies

BROWSER_COOKIE = "broker_browser"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def browser_hash() -> str:
    """The hash to keep in a pending login started by this request (the cookie is set on the response)."""
    if "browser_nonce" not in g:
        sent = request.cookies.get(BROWSER_COOKIE, "")
        g.browser_nonce = sent if _NONCE.match(sent) else _new_nonce()
    return hashlib.sha256(g.browser_nonce.encode()).hexdigest()


def _new_nonce() -> str:
    return secrets.token_urlsafe(32)


def bind_to_browser(response: Response) -> Response:
    """Set (or refresh) the binding cookie. Outside the demo it is SameSite=None and Secure: the IdP's POST to
    the ACS is a cross-site request, and a Lax cookie would not come with it."""
    if "browser_nonce" in g:
        secure = secure_cookies()
        response.set_cookie(
            BROWSER_COOKIE, g.browser_nonce, max_age=runtime().config.broker.login_ttl_seconds, path="/",
            httponly=True, secure=secure, samesite="None" if secure else "Lax",
        )  # fmt: skip
    return response


def same_browser(expected: str | None) -> bool:
    """This request carries the binding cookie whose hash is `expected`."""
    sent = request.cookies.get(BROWSER_COOKIE, "")
    given = hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest()
    return bool(sent and expected and hmac.compare_digest(given, expected))


def check_same_browser(pending: PendingLogin) -> None:
    """Refuse a response for a pending login that another browser started."""
    if pending.browser is None:
        return
    sent = request.cookies.get(BROWSER_COOKIE, "")
    given = hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest()
    if not sent or not hmac.compare_digest(given, pending.browser):
        raise OtherBrowser(
            f"pending login for portal {pending.portal or '-'} ({pending.purpose}) was started in another "
            f"browser ({'no' if not sent else 'a different'} binding cookie)"
        )
