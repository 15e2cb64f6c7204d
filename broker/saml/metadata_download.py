"""Downloading upstream metadata: size-capped, and redirects followed one by one, each checked first (never to
cleartext; to another host only when the metadata's signature will be checked)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests

from broker.clients.http import Budget, pooled_session, send_within
from broker.config.urls import insecure_url_problem, same_origin
from broker.saml.metadata import MetadataError

ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
USER_AGENT = "learnupon-saml-broker (metadata refresh)"
MAX_REDIRECTS = 5


def redirect_problem(url: str, target: str, *, signature_checked: bool) -> str | None:
    """Why a redirect from the configured `url` to `target` may not be followed: never to cleartext, and to
    another host only when the metadata's signature is checked (then the host serving it does not matter)."""
    problem = insecure_url_problem(target)
    if problem:
        return f"redirected to {target}, which {problem}"
    if not same_origin(url, target) and not signature_checked:
        return (
            f"redirected to another host ({urlsplit(target).netloc}); use that URL in metadata_url, or set "
            "metadata_refresh.signing_certificate so the metadata's signature is checked"
        )
    return None


def download(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    signature_checked: bool,
    session: requests.Session | None = None,
) -> bytes:
    """The body at `url`. `timeout` bounds the whole download, redirects included (a server dripping bytes is
    cut there, not only each read); at most `max_bytes`. MetadataError says why it cannot be had."""
    problem = insecure_url_problem(url)
    if problem:
        raise MetadataError(f"metadata URL {problem}")
    budget = Budget.start(timeout)
    own = session is None
    session = session or pooled_session(1)  # with the watchdog's adapter
    try:
        reply = _follow(session, url, budget, (timeout, timeout), max_bytes, signature_checked)
    finally:
        if own:
            session.close()
    if reply.status_code != 200:
        raise MetadataError(f"HTTP {reply.status_code} {reply.reason or ''}".strip())
    return reply.content


def _follow(
    session: requests.Session,
    url: str,
    budget: Budget,
    timeout: tuple[float, float],
    max_bytes: int,
    signature_checked: bool,
) -> requests.Response:
    """Follow up to MAX_REDIRECTS redirects ourselves, so each one is checked before it is followed."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            reply = send_within(session, "GET", current, budget=budget, timeout=timeout, max_bytes=max_bytes,
                                allow_redirects=False, headers={"Accept": ACCEPT, "User-Agent": USER_AGENT})  # fmt: skip
        except requests.exceptions.ContentDecodingError:
            raise MetadataError(f"metadata is over max_bytes ({max_bytes})") from None
        except requests.RequestException as exc:
            raise MetadataError(f"cannot fetch: {type(exc).__name__}: {exc}") from None
        if not reply.is_redirect:
            return reply
        target = urljoin(current, reply.headers["Location"])
        problem = redirect_problem(url, target, signature_checked=signature_checked)
        if problem:
            raise MetadataError(problem)
        current = target
    raise MetadataError(f"more than {MAX_REDIRECTS} redirects")
