"""The SCIM bridge's background task: bring one SCIM user's LearnUpon account in one portal in line with what the
broker stores for the user now (queued after a SCIM request, see broker/scim/fanout.py).

Idempotent: it reads the stored SCIM state when it runs, so a job run twice, late, or after a newer change
pushes only what still differs (0 LearnUpon calls when nothing does), and a user deleted meanwhile is
deprovisioned. A LearnUpon 429 is waited out inside the job for as long as its Retry-After says; other failures
go back to RQ, which retries with backoff and keeps the reason for /admin/jobs.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import TYPE_CHECKING

from broker.jobs.queue import SERIALIZER, enqueue, rq_connection
from broker.jobs.registry import JobFailed

if TYPE_CHECKING:
    from broker.runtime import Runtime

log = logging.getLogger(__name__)

TASK = "scim_push"
JOB_SECONDS = 240.0  # inside the job's 300 s timeout: how long it may wait out LearnUpon's Retry-After


def scim_job_id(tenant: str, user_id: str, portal: str) -> str:
    # one job per SCIM user and portal; RQ takes only [A-Za-z0-9_-] (tenants hold `.` and `@`)
    digest = hashlib.sha256(f"{tenant}\n{portal}".encode()).hexdigest()[:16]
    return f"scim-{digest}-{re.sub(r'[^A-Za-z0-9_-]', '_', user_id)}"


def enqueue_scim_push(
    rt: Runtime, tenant: str, user_id: str, portal: str, client_name: str, upstream: str | None
) -> str:
    """Queue the push of one SCIM user to one portal; returns the job id. A job for the same user and portal
    still waiting in the queue is left as it is: it reads the stored state when it runs, so it will carry
    this change too (and is not queued, nor run, twice)."""
    job_id = scim_job_id(tenant, user_id, portal)
    if not _waiting(rt, job_id):
        enqueue(
            rt.store, TASK,
            {"tenant": tenant, "user_id": user_id, "portal": portal, "client": client_name, "upstream": upstream},
            description=f"SCIM user {user_id} → portal {portal} (client {client_name}, tenant {tenant})",
            job_id=job_id, runtime=rt,
        )  # fmt: skip
    return job_id


def _waiting(rt: Runtime, job_id: str) -> bool:
    connection = rq_connection(rt.store)
    if connection is None:
        return False
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        return (
            Job.fetch(job_id, connection=connection, serializer=SERIALIZER).get_status() == JobStatus.QUEUED
        )
    except NoSuchJobError:
        return False


def push_scim_user(
    rt: Runtime, *, tenant: str, user_id: str, portal: str, client: str, upstream: str | None
) -> str:
    """The task: converge `user_id` of SCIM tenant `tenant` on `portal`. Returns what it did.

    It runs under the tenant's owning client and that client's upstream as configured now (the job's own
    `client`/`upstream` arguments only say who queued it)."""
    from broker.clients.learnupon import LearnUponError, LearnUponUnavailable
    from broker.errors import StoreUnavailable
    from broker.scim.push import Pusher
    from broker.scim.state import Busy, PortalGroups, ScimState, split_tenant
    from broker.scim.storage import BridgeStorage
    from broker.scim.trust import AccountLinks, ScimRefused

    if portal not in rt.config.portals:
        return f"portal {portal} is no longer configured: nothing to do"
    owner, tenant_portal = split_tenant(tenant)
    settings = next((c for c in rt.config.scim.clients if c.name == owner), None)
    if settings is None:
        return f"tenant {tenant}: no configured SCIM client owns it: nothing to do"
    clients = {name: p.learnupon for name, p in rt.portals.items() if p.learnupon is not None}
    storage = BridgeStorage(
        rt.config, ScimState(rt.store, tenant),
        Pusher(rt.config, clients, PortalGroups(rt.store),
               AccountLinks(rt.config, rt.store, settings.name, settings.upstream)),
        portal=tenant_portal, client_name=settings.name, upstream=settings.upstream,
    )  # fmt: skip
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        try:
            report = storage.converge(user_id, portal)
        except LearnUponUnavailable as exc:
            wait = exc.retry_after if exc.status == 429 else None
            if wait is None or time.monotonic() + wait > deadline:
                raise JobFailed(str(exc)) from None
            log.info("scim job %s: LearnUpon asks to wait %.0f s", scim_job_id(tenant, user_id, portal), wait)
            time.sleep(wait)  # honour Retry-After: never call again before it is over
            continue
        except ScimRefused as exc:
            raise JobFailed(exc.reason) from None
        except (LearnUponError, Busy, StoreUnavailable) as exc:
            raise JobFailed(str(exc)) from None
        action = report.actions.get(portal, "unchanged")
        return f"{portal}: {action}, {report.total_calls} LearnUpon call(s)"
