"""What the SCIM bridge remembers, in the broker's store (Redis in production), per SCIM tenant.

A tenant is one SCIM client at one SCIM base URL: `all@<client>` (/scim/v2, portals by routing rules) or
`portal.<name>@<client>`, so a client sees and changes only what it pushed itself. For each it keeps
the resources as the IdP last sent them (never a password), unique-value indexes (userName, externalId,
displayName, work email), a numbered list for listing, each user's groups, and what was last pushed to each
LearnUpon portal for a user (its LearnUpon id, fields and group memberships), so a change that changes nothing
costs no LearnUpon call. Keys last ten years: the store's interface wants a TTL, and these must outlive restarts.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from broker.store import Store, keys

FOREVER = 10 * 365 * 24 * 3600
_LOCK_POLL_SECONDS = 0.02


def value_key(value: str, case_exact: bool = False) -> str:
    """The hash under which a unique value is indexed (case-folded unless the attribute is caseExact)."""
    text = value if case_exact else value.casefold()
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def tenant_name(client: str, portal: str | None) -> str:
    """The tenant of SCIM client `client` at /scim/v2 (`portal` None) or /scim/v2/portals/<portal>. (Client
    names have no `@`. Records from before clients were separated, under `all` or `portal.<name>`, belong to
    no client: every client gets 404 for them, and the IdP creates them again, adopting the LearnUpon user.)"""
    return f"{'all' if portal is None else 'portal.' + portal}@{client}"


def split_tenant(tenant: str) -> tuple[str | None, str | None]:
    """(client, portal) of a tenant name; client None for a tenant from before clients were separated."""
    scope, at, client = tenant.rpartition("@")
    if not at:
        scope, client = tenant, ""
    portal = scope.removeprefix("portal.") if scope.startswith("portal.") else None
    return client or None, portal


class Busy(Exception):
    """Another request holds this resource's lock for longer than we may wait."""


@dataclass
class Pushed:
    """What was last sent to one portal for one user. `groups`: lower-case title → [title, LearnUpon group id]."""

    id: int
    fields: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "fields": self.fields, "groups": self.groups}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pushed:
        return cls(int(data["id"]), dict(data.get("fields") or {}), dict(data.get("groups") or {}))


class ScimState:
    """The store keys of one tenant. Every method is one or a few store round trips."""

    def __init__(self, store: Store, tenant: str):
        self.store = store
        self.tenant = tenant
        self.prefix = keys.scim_tenant(tenant)

    # -- resources ---------------------------------------------------------------------------------------

    def _resource_key(self, kind: str, resource_id: str) -> str:
        return f"{self.prefix}r:{kind}:{resource_id}"

    def load(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """The stored record `{"resource": {...}, "seq": n, "version": v}`, or None."""
        raw = self.store.get(self._resource_key(kind, resource_id))
        return json.loads(raw) if raw else None

    def load_many(self, kind: str, resource_ids: list[str]) -> list[dict[str, Any]]:
        if not resource_ids:
            return []
        raws = self.store.get_many([self._resource_key(kind, rid) for rid in resource_ids])
        return [json.loads(raw) for raw in raws if raw]

    def save(self, kind: str, resource_id: str, record: dict[str, Any]) -> None:
        self.store.put(self._resource_key(kind, resource_id), json.dumps(record).encode(), FOREVER)

    def forget(self, kind: str, resource_id: str, record: dict[str, Any]) -> None:
        self.store.delete(f"{self.prefix}at:{kind}:{record['seq']}")
        self.store.delete(self._resource_key(kind, resource_id))

    def new_id(self) -> str:
        return secrets.token_hex(16)

    def number(self, kind: str, resource_id: str) -> int:
        """Give a new resource its place in the listing order."""
        seq = self.store.incr(f"{self.prefix}seq:{kind}", FOREVER)
        self.store.put(f"{self.prefix}at:{kind}:{seq}", resource_id.encode(), FOREVER)
        return seq

    def all_ids(self, kind: str, chunk: int = 1000) -> list[str]:
        """Every live resource id of a kind, in creation order (deleted places are skipped)."""
        last = int(self.store.get(f"{self.prefix}seq:{kind}") or b"0")
        ids: list[str] = []
        for start in range(1, last + 1, chunk):
            keys = [f"{self.prefix}at:{kind}:{n}" for n in range(start, min(last, start + chunk - 1) + 1)]
            ids.extend(raw.decode() for raw in self.store.get_many(keys) if raw)
        return ids

    # -- unique-value indexes ----------------------------------------------------------------------------

    def _index_key(self, kind: str, attribute: str, digest: str) -> str:
        return f"{self.prefix}ix:{kind}:{attribute}:{digest}"

    def claim(self, kind: str, attribute: str, digest: str, resource_id: str) -> bool:
        """Take a unique value for a resource; False when another resource holds it."""
        key = self._index_key(kind, attribute, digest)
        if self.store.add(key, resource_id.encode(), FOREVER):
            return True
        holder = self.store.get(key)
        return holder is not None and holder.decode() == resource_id

    def release(self, kind: str, attribute: str, digest: str, resource_id: str) -> None:
        key = self._index_key(kind, attribute, digest)
        holder = self.store.get(key)
        if holder is not None and holder.decode() == resource_id:
            self.store.delete(key)

    def lookup(self, kind: str, attribute: str, digest: str) -> str | None:
        raw = self.store.get(self._index_key(kind, attribute, digest))
        return raw.decode() if raw else None

    # -- a user's groups and what was pushed ---------------------------------------------------------------

    def groups_of(self, user_id: str) -> list[str]:
        raw = self.store.get(f"{self.prefix}groups-of:{user_id}")
        return json.loads(raw) if raw else []

    def set_groups_of(self, user_id: str, group_ids: list[str]) -> None:
        key = f"{self.prefix}groups-of:{user_id}"
        if group_ids:
            self.store.put(key, json.dumps(sorted(set(group_ids))).encode(), FOREVER)
        else:
            self.store.delete(key)

    def pushed(self, user_id: str) -> dict[str, Pushed]:
        raw = self.store.get(f"{self.prefix}pushed:{user_id}")
        return {p: Pushed.from_json(d) for p, d in json.loads(raw).items()} if raw else {}

    def set_pushed(self, user_id: str, pushed: dict[str, Pushed]) -> None:
        key = f"{self.prefix}pushed:{user_id}"
        if pushed:
            self.store.put(key, json.dumps({p: v.to_json() for p, v in pushed.items()}).encode(), FOREVER)
        else:
            self.store.delete(key)

    # -- one change at a time per resource -----------------------------------------------------------------

    @contextmanager
    def locked(self, kind: str, resource_id: str, wait_seconds: float) -> Iterator[None]:
        """Hold a resource's lock (shared by all replicas through the store) for one change."""
        key = f"{self.prefix}lock:{kind}:{resource_id}"
        token = secrets.token_hex(8).encode()
        deadline = time.monotonic() + wait_seconds
        while not self.store.add(key, token, int(wait_seconds) + 30):
            if time.monotonic() >= deadline:
                raise Busy(f"{kind} {resource_id} is being changed by another request")
            time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            if self.store.get(key) == token:
                self.store.delete(key)


class PortalGroups:
    """LearnUpon group ids by title, per portal (shared by every tenant: a title is unique in a portal)."""

    def __init__(self, store: Store):
        self.store = store

    def _key(self, portal: str, title: str) -> str:
        return keys.scim_learnupon_group(portal, value_key(title))

    def get(self, portal: str, title: str) -> int | None:
        raw = self.store.get(self._key(portal, title))
        return int(raw) if raw else None

    def put(self, portal: str, title: str, group_id: int) -> None:
        self.store.put(self._key(portal, title), str(group_id).encode(), FOREVER)

    def forget(self, portal: str, title: str) -> None:
        self.store.delete(self._key(portal, title))
