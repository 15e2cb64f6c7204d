"""Audit events: one JSON-ready log record per login and per admin action, on the `broker.ops.audit` logger.

Never an assertion, a password, a token or an API key: only who, what, where and the outcome.
"""

from __future__ import annotations

import logging

log = logging.getLogger("broker.ops.audit")


def audit(event: str, **fields: object) -> None:
    log.info(event, extra={"audit": {"event": event, **fields}})
