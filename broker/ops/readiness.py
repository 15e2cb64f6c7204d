"""What /readyz reports: whether this process can take logins, and why not. Cheap and bounded, so a health
probe never waits long: the store's durability settings are read at most every `DURABILITY_EVERY` seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from broker.clients.guard import GuardStatus, ServiceGuard
from broker.saml.metadata import is_expired
from broker.store.durability import DURABILITY_EVERY as DURABILITY_EVERY  # re-exported
from broker.store.durability import DurabilityProbe as DurabilityProbe

if TYPE_CHECKING:
    from broker.runtime import Runtime


def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """(ready, body) for /readyz: named checks, then details (store durability findings)."""
    now = datetime.now(UTC)
    store_up = rt.store.ping()
    durability = rt.durability_probe.read(rt.store) if store_up else None
    checks = {
        "config": True,
        "keys": bool(rt.portals) and rt.broker_keys is not None,
        "store": store_up,
        # an evicting maxmemory-policy could drop replay-cache entries: not fit for logins
        "store_durability": durability is not None and durability.ok,
        "upstream_metadata": all(not is_expired(upstream.idp, now) for upstream in rt.upstreams.values()),
    }
    ready = all(checks.values())
    body: dict[str, Any] = {"ready": ready, "checks": checks}
    if durability is not None:
        body["store"] = {
            "persistence": durability.persistence,
            "eviction_policy": durability.eviction_policy,
            "errors": list(durability.errors),
            "warnings": list(durability.warnings),
        }
    services = {status.service: {"state": status.state, "consecutive_failures": status.consecutive_failures,
                                 "in_flight": status.in_flight, "max_concurrent": status.max_concurrent,
                                 "retry_in_seconds": round(status.retry_in, 1), "refused": status.refused,
                                 "last_failure": status.last_failure}
                for status in guard_statuses(rt)}  # fmt: skip
    if services:
        # an open circuit does not make the broker unready: logins go on under each portal's failure policy
        body["services"] = services
    return ready, body


def guard_statuses(rt: Runtime) -> list[GuardStatus]:
    """The bulkhead and circuit state of every outside service client (LearnUpon portals, Graph tenants)."""
    clients: list[object] = [*(p.learnupon for p in rt.portals.values())]
    clients += [u.directory for u in rt.upstreams.values()]
    guards = [getattr(client, "guard", None) for client in clients]
    return [guard.status() for guard in guards if isinstance(guard, ServiceGuard)]
