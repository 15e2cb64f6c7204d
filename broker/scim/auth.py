"""SCIM clients' bearer tokens: only their SHA-256 digests are known (from the environment), compared in
constant time; and a per-client request budget per minute, counted in the shared store."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from broker.config.scim import ScimSettings, valid_token_digest
from broker.errors import ConfigError
from broker.store import Store, keys


@dataclass(frozen=True)
class ScimClient:
    name: str
    digest: bytes
    upstream: str | None


def token_digest(token: str) -> str:
    """The hex digest an operator puts in the environment for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A new bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def load_clients(settings: ScimSettings, environ: Mapping[str, str] | None = None) -> list[ScimClient]:
    """Each client's token digest from its environment variable; ConfigError naming the variable if unusable."""
    environ = os.environ if environ is None else environ
    clients = []
    for index, client in enumerate(settings.clients):
        value = environ.get(client.token_sha256_env, "").strip().lower()
        where = f"scim.clients.{index} ({client.name}): environment variable {client.token_sha256_env}"
        if not value:
            raise ConfigError(f"{where} is not set")
        if not valid_token_digest(value):
            raise ConfigError(f"{where} must hold the SHA-256 hex digest of the token (64 hex digits)")
        clients.append(ScimClient(client.name, bytes.fromhex(value), client.upstream))
    return clients


def authenticate(header: str | None, clients: list[ScimClient]) -> ScimClient | None:
    """The client whose token the `Authorization: Bearer` header carries, or None. Every client's digest is
    compared (no early exit), each comparison in constant time."""
    if not header or not header[:7].lower() == "bearer ":
        return None
    presented = hashlib.sha256(header[7:].strip().encode()).digest()
    found = None
    for client in clients:
        if hmac.compare_digest(presented, client.digest):
            found = client
    return found


def over_limit(store: Store, client: ScimClient, per_minute: int, now: float | None = None) -> int | None:
    """Seconds to wait when the client has used this minute's requests, else None."""
    if per_minute <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // 60)
    if store.incr(keys.rate_window("scim", client.name, window), 61) <= per_minute:
        return None
    return max(1, 60 - int(now) % 60)
