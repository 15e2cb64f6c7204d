"""The tasks background jobs can run, by name, and the one function RQ calls for every job (`run_task`).

A task is a function `task(rt: Runtime, **kwargs) -> str` (the text is the job's result, shown on the admin
page); it raises `JobFailed` (or any exception) to be retried with backoff. Tasks are named here as
"module:function" strings, resolved when a job runs, so the job queue imports no feature module and a feature
module may enqueue its own tasks. Add a task with one line in `TASKS` (or `register` at import time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.runtime import Runtime

TASKS: dict[str, str] = {
    # leftover provisioning of one account (a login's deadline reached, or a login refused under `block`)
    "converge_account": "broker.jobs.tasks:converge_account",
    # `broker provision` on Redis: one chunk of a cohort's rows
    "provision_rows": "broker.provisioning.bulk_jobs:provision_chunk",
    # `broker review --apply` (and the admin page's apply) on Redis: the confirmed changes of one portal
    "review_apply": "broker.review.service:apply_confirmed",
    # a SCIM change's push of one user to one portal (its other portals, members of large group changes)
    "scim_push": "broker.jobs.scim_push:push_scim_user",
}

_worker_runtime: Runtime | None = None  # set by `broker worker` before it takes jobs


class JobFailed(Exception):
    """The job could not finish; it is retried with backoff, and the text is shown on the admin page."""


def register(name: str, target: str) -> None:
    """Name another task: `target` is "package.module:function", a `task(rt, **kwargs) -> str`."""
    if ":" not in target:
        raise ValueError(f"task {name}: target must be 'module:function', not {target!r}")
    TASKS[name] = target


def resolve(name: str) -> Callable[..., str]:
    if name not in TASKS:
        raise JobFailed(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
    module, _, function = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def use_runtime(rt: Runtime | None) -> None:
    """The runtime jobs run with in this process (`broker worker`)."""
    global _worker_runtime
    _worker_runtime = rt


def in_worker() -> bool:
    """True in `broker worker` (a job may take its time); False when jobs run inside the broker's process."""
    return _worker_runtime is not None


def run_task(name: str, kwargs: dict[str, Any], rt: Runtime | None = None) -> str:
    """Run task `name` with `kwargs`: what RQ calls for every job (with the worker's runtime), and what the
    in-process pool calls (with the broker's)."""
    rt = rt or _worker_runtime
    if rt is None:
        raise JobFailed("no runtime: jobs run in `broker worker`, or in-process with the memory store")
    try:
        return resolve(name)(rt, **kwargs)
    except Exception as exc:
        note_error(f"{type(exc).__name__}: {exc}" if not isinstance(exc, JobFailed) else str(exc))
        raise


def note_error(reason: str) -> None:
    """Keep the reason on the RQ job (RQ keeps no error text for a job it will retry): the admin page shows it."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta["last_error"] = reason[:500]
        job.save_meta()
