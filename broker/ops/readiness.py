"""Is this replica ready for logins? The same checks answer /readyz and the `broker_ready` gauge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from broker.saml.metadata import is_expired

if TYPE_CHECKING:
    from broker.runtime import Runtime


def readiness_checks(rt: Runtime) -> dict[str, bool]:
    now = datetime.now(UTC)
    return {
        "config": True,
        "keys": bool(rt.portal_trust) and rt.broker_keys is not None,
        "store": rt.store.ping(),
        "upstream_metadata": all(not is_expired(upstream, now) for upstream in rt.upstreams.values()),
    }
