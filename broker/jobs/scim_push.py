"""The SCIM bridge's background job: bring one SCIM user's LearnUpon account in one portal in line with what the
broker stores for the user now (queued after a SCIM request, see broker/scim/fanout.py).

Idempotent: it reads the stored SCIM state when it runs, so a job run twice, late, or after a newer change
pushes only what still differs (0 LearnUpon calls when nothing does), and a user deleted meanwhile is
deprovisioned. A LearnUpon 429 is waited out inside the job for as long as its Retry-After says; other failures
go back to RQ, which retries with backoff and keeps the reason for /admin/jobs.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from broker.jobs.queue import enqueue_task
from broker.jobs.tasks import JobFailed, _note_error, worker_runtime

if TYPE_CHECKING:
    from broker.runtime import Runtime

log = logging.getLogger(__name__)

TASK = "broker.jobs.scim_push.push_scim_user"
JOB_SECONDS = 240.0  # inside RQ's 300 s timeout: how long a job may wait out LearnUpon's Retry-After


def scim_job_id(tenant: str, user_id: str, portal: str) -> str:
    # one job per SCIM user and portal: queued again while it still waits, it is not queued twice
    return f"scim-{tenant}-{user_id}-{portal}"


def enqueue_scim_push(
    rt: Runtime, tenant: str, user_id: str, portal: str, client_name: str, upstream: str | None
) -> bool:
    """Queue the push of one SCIM user to one portal; False when there is no job queue."""
    return enqueue_task(
        rt, TASK, (tenant, user_id, portal, client_name, upstream),
        job_id=scim_job_id(tenant, user_id, portal),
        description=f"SCIM user {user_id} → portal {portal} (client {client_name}, tenant {tenant})",
    )  # fmt: skip


def push_scim_user(
    tenant: str, user_id: str, portal: str, client_name: str, upstream: str | None, rt: Runtime | None = None
) -> str:
    """The job: converge `user_id` of SCIM tenant `tenant` on `portal`. Returns what it did."""
    from broker.clients.learnupon import LearnUponError, LearnUponUnavailable
    from broker.errors import StoreUnavailable
    from broker.scim.push import EmailChangeRefused, Pusher
    from broker.scim.state import Busy, PortalGroups, ScimState
    from broker.scim.storage import BridgeStorage

    rt = rt or worker_runtime()
    if rt is None:
        raise JobFailed("no runtime: SCIM jobs run in `broker worker`")
    if portal not in rt.config.portals:
        return f"portal {portal} is no longer configured: nothing to do"
    clients = {name: p.learnupon for name, p in rt.portals.items() if p.learnupon is not None}
    storage = BridgeStorage(
        rt.config, ScimState(rt.store, tenant), Pusher(rt.config, clients, PortalGroups(rt.store)),
        portal=tenant.removeprefix("portal.") if tenant.startswith("portal.") else None,
        client_name=client_name, upstream=upstream,
    )  # fmt: skip
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        try:
            report = storage.converge(user_id, portal)
        except LearnUponUnavailable as exc:
            wait = exc.retry_after if exc.status == 429 else None
            if wait is None or time.monotonic() + wait > deadline:
                _note_error(str(exc))
                raise JobFailed(str(exc)) from None
            log.info("scim job %s: LearnUpon asks to wait %.0f s", scim_job_id(tenant, user_id, portal), wait)
            time.sleep(wait)  # honour Retry-After: never call again before it is over
            continue
        except EmailChangeRefused as exc:
            _note_error(exc.reason)
            raise JobFailed(exc.reason) from None
        except (LearnUponError, Busy, StoreUnavailable) as exc:
            _note_error(str(exc))
            raise JobFailed(str(exc)) from None
        action = report.actions.get(portal, "unchanged")
        return f"{portal}: {action}, {report.total_calls} LearnUpon call(s)"
