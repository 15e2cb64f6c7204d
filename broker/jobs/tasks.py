"""What background jobs do. Every job is idempotent: it reads LearnUpon and converges, so running it twice,
or after the login's own provisioning did part of the work, changes nothing more."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from broker.model import Claims

if TYPE_CHECKING:
    from broker.runtime import Runtime

log = logging.getLogger(__name__)

JOB_BUDGET_SECONDS = 60.0  # a job has no user waiting: more time than a login's budget
IN_PROCESS_BUDGET_SECONDS = 15.0  # in the broker's own process a job must not hold a thread that long

_worker_runtime: Runtime | None = None  # set by `broker worker` before it takes jobs


class JobFailed(Exception):
    """The job could not finish; RQ retries it with backoff, and shows the text on the admin page."""


def use_runtime(rt: Runtime | None) -> None:
    """The runtime jobs run with in this process (`broker worker`)."""
    global _worker_runtime
    _worker_runtime = rt


def claims_to_dict(claims: Claims) -> dict[str, Any]:
    return asdict(claims)


def claims_from_dict(data: dict[str, Any]) -> Claims:
    return Claims(**{**data, "groups": tuple(data["groups"]),
                     "extra": {k: tuple(v) for k, v in data.get("extra", {}).items()}})  # fmt: skip


def converge_account(portal: str, claims: dict[str, Any], rt: Runtime | None = None) -> str:
    """Make `portal`'s LearnUpon account match `claims` (user, groups, enrollments), as a login would. With
    `rt` the job runs inside the broker (memory store), else in `broker worker`."""
    from broker.provisioning.sync import ProvisioningError, sync_user
    from broker.rules.portal_groups import portal_groups

    budget = IN_PROCESS_BUDGET_SECONDS if rt is not None else JOB_BUDGET_SECONDS
    rt = rt or _worker_runtime
    if rt is None:
        raise JobFailed("no runtime: jobs run in `broker worker`, or in-process with the memory store")
    client = rt.portals[portal].learnupon if portal in rt.portals else None
    if client is None:
        raise JobFailed(
            f"portal {portal} has no provisioning client (provisioning off, or its secrets missing)"
        )
    wanted = claims_from_dict(claims)
    # state_ttl 0: the job leaves no "already synced" mark, so the user's next login reads LearnUpon once more
    # (and shows on the portal health page that the API answers)
    update: dict[str, Any] = {
        "on_failure": "block",
        "budget_seconds": budget,
        "state_ttl_seconds": 0,
    }
    if not wanted.groups_complete:  # the login's groups were incomplete: add, remove nothing
        update |= {"managed_groups": [], "managed_group_patterns": []}
    settings = rt.portals[portal].settings.provisioning.model_copy(update=update)
    try:
        groups = portal_groups(wanted.groups, rt.portals[portal].settings.groups)  # as the login would send
        outcome = sync_user(portal, wanted, settings, client, rt.store, groups=groups)
    except ProvisioningError as exc:
        _note_error(str(exc.reason))
        raise JobFailed(str(exc.reason)) from None
    rt.metrics.provisioning.labels(portal, f"job_{outcome.status}").inc()
    log.info("job converged portal=%s email=%s status=%s calls=%d", portal, wanted.email, outcome.status,
             len(outcome.calls))  # fmt: skip
    return f"{outcome.status}: {len(outcome.calls)} change(s)"


def _note_error(reason: str) -> None:
    """Keep the reason on the RQ job (RQ keeps no error text for a job it will retry): the admin page shows it."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta["last_error"] = reason[:500]
        job.save_meta()


def worker_runtime() -> Runtime | None:
    """The runtime `broker worker` loaded for its jobs (None elsewhere)."""
    return _worker_runtime
