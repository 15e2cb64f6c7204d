"""`broker provision` on Redis: a cohort's rows become background jobs of `CHUNK_ROWS` rows each, run by any
number of `broker worker` processes (broker.jobs). Each job syncs its rows as a login would and is idempotent:
a row already done reads as unchanged, so a retried job (or the same command run twice, which enqueues the same
job ids) changes nothing twice. A job with failed rows fails with the first reason and is retried with backoff.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from broker.jobs.queue import enqueue
from broker.jobs.registry import JobFailed
from broker.jobs.tasks import claims_from_dict, claims_to_dict
from broker.model import Claims
from broker.provisioning.bulk import add_only_settings, provision_rows
from broker.provisioning.sync import build_client
from broker.store import Store

if TYPE_CHECKING:
    from broker.runtime import Runtime

CHUNK_ROWS = 50  # small enough that a retry redoes little, large enough that 20,000 rows are 400 jobs


def enqueue_rows(
    store: Store,
    portal: str,
    rows: Sequence[tuple[int, Claims]],
    *,
    add_only: bool,
    budget_seconds: float,
    source: str,
    chunk_rows: int = CHUNK_ROWS,
) -> list[str]:
    """Queue `rows` (line, claims) as jobs on the store's Redis; the job ids, in row order. The same rows
    queued again get the same ids (a job not yet run is replaced, not doubled)."""
    job_ids = []
    for start in range(0, len(rows), chunk_rows):
        part = rows[start : start + chunk_rows]
        payload = [{"line": line, "claims": claims_to_dict(claims)} for line, claims in part]
        digest = hashlib.sha256(json.dumps([portal, add_only, payload], sort_keys=True).encode()).hexdigest()
        kwargs = {"portal": portal, "rows": payload, "add_only": add_only, "budget_seconds": budget_seconds}
        job_ids.append(
            enqueue(store, "provision_rows", kwargs, job_id=f"provision-{portal}-{digest[:20]}",
                    description=f"provision {len(part)} rows of {source} on {portal} "
                                f"(rows {part[0][0]}–{part[-1][0]})",
                    timeout=int(len(part) * budget_seconds) + 60)  # every row may wait out its whole budget
        )  # fmt: skip
    return job_ids


def provision_chunk(
    rt: Runtime, *, portal: str, rows: list[dict[str, Any]], add_only: bool, budget_seconds: float
) -> str:
    """The task: sync these rows on `portal` with the worker's configuration and credentials."""
    if portal not in rt.config.portals:
        raise JobFailed(f"portal {portal} is not in this worker's configuration")
    settings = rt.config.portals[portal].provisioning
    if add_only:
        settings = add_only_settings(settings)
    client = build_client(portal, settings, max_retry_after=60)
    try:
        summary = provision_rows(
            [(row["line"], claims_from_dict(row["claims"])) for row in rows], portal, settings, client,
            rt.store, group_profile=rt.config.portals[portal].groups, budget_seconds=budget_seconds,
        )  # fmt: skip
    finally:
        client.session.close()
    if summary.failures:
        line, email, reason = summary.failures[0]
        raise JobFailed(
            f"{len(summary.failures)} of {summary.total} rows failed (a retry runs them again; rows done read "
            f"as unchanged); row {line}: {email}: {reason}"
        )
    return f"{summary.synced} synced, {summary.unchanged} unchanged"
