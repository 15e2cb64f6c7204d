"""Leftover provisioning, as a task (see broker.jobs.registry). Idempotent: it reads LearnUpon and converges,
so running it twice, or after the login's own provisioning did part of the work, changes nothing more."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from broker.jobs.registry import JobFailed, in_worker
from broker.model import Claims

if TYPE_CHECKING:
    from broker.runtime import Runtime

log = logging.getLogger(__name__)

JOB_BUDGET_SECONDS = 60.0  # a job has no user waiting: more time than a login's budget
IN_PROCESS_BUDGET_SECONDS = 15.0  # in the broker's own process a job must not hold a thread that long


def claims_to_dict(claims: Claims) -> dict[str, Any]:
    return asdict(claims)


def claims_from_dict(data: dict[str, Any]) -> Claims:
    return Claims(**{**data, "groups": tuple(data["groups"]),
                     "extra": {k: tuple(v) for k, v in data.get("extra", {}).items()}})  # fmt: skip


def converge_account(rt: Runtime, *, portal: str, claims: dict[str, Any]) -> str:
    """Make `portal`'s LearnUpon account match `claims` (user, groups, enrollments), as a login would."""
    from broker.provisioning.sync import ProvisioningError, sync_user
    from broker.rules.portal_groups import portal_groups

    budget = JOB_BUDGET_SECONDS if in_worker() else IN_PROCESS_BUDGET_SECONDS
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
        raise JobFailed(str(exc.reason)) from None
    rt.metrics.provisioning.labels(portal, f"job_{outcome.status}").inc()
    log.info("job converged portal=%s email=%s status=%s calls=%d", portal, wanted.email, outcome.status,
             len(outcome.calls))  # fmt: skip
    return f"{outcome.status}: {len(outcome.calls)} change(s)"
