"""Outbound URL policy (config validation and the metadata download share it): secrets, tokens and trust
anchors travel only over HTTPS. Plain http:// is allowed to this machine alone (the demo and the tests run their
fakes on loopback)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def insecure_url_problem(url: str) -> str | None:
    """Why `url` may not be used for an outbound call, or None when it may."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "must be an absolute URL like https://host/path"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "must use https (plain http only to 127.0.0.1 / localhost)"


def same_origin(first: str, second: str) -> bool:
    """Scheme, host and port all equal."""
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
