"""Where background jobs run: on RQ (a well-kept Redis job queue) when the store is Redis — any number of
`broker worker` processes, on any machines, share the queue; retried with backoff; failures kept with their
reason — or, with the memory store, in this process (a small thread pool, the same retries).

To run something in the background, name a task in `broker.jobs.registry.TASKS` (a function
`task(rt, **kwargs) -> str`, idempotent: a job may run twice) and enqueue it with JSON-able arguments:

    from broker.jobs.queue import enqueue
    job_id = enqueue(rt.store, "converge_account", {"portal": "academy", "claims": {...}},
                     description="converge alex@contoso.com on academy", job_id="converge-academy-…",
                     runtime=rt)

`job_id` (optional) makes enqueuing idempotent too: the same id again replaces the waiting job. `runtime` is
the runtime the task runs with when there is no Redis (in-process); on Redis, `broker worker` has its own.
`rq_connection(store)` says which of the two a store gets.

The admin page (/admin/jobs) and /metrics (`broker_jobs{state}`) read `overview`: queued, running, waiting for
a retry, failed (with the reason).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from broker.jobs.registry import run_task
from broker.jobs.tasks import claims_to_dict
from broker.model import Claims

if TYPE_CHECKING:
    from broker.runtime import Runtime
    from broker.store import Store

log = logging.getLogger(__name__)

QUEUE_NAME = "broker"
RETRY_INTERVALS = (10, 30, 120, 600, 1800)  # seconds before retry 1, 2, ... (RQ's scheduler waits them out)
IN_PROCESS_INTERVALS = (1, 5, 30, 120, 600)
IN_PROCESS_FIRST_DELAY = 2.0  # the login just failed: give the service a moment before the first try
KEEP_FAILED_SECONDS = 7 * 86400
KEEP_DONE_SECONDS = 86400
SHOWN = 50
# Jobs are stored as JSON, never pickle: whoever can write to Redis must not get code run on every worker.
SERIALIZER = "rq.serializers.JSONSerializer"


@dataclass(frozen=True)
class JobView:
    id: str
    description: str
    state: str  # queued, running, scheduled (waiting for a retry), failed, finished
    enqueued_at: datetime | None = None
    ended_at: datetime | None = None
    retries_left: int | None = None
    reason: str | None = None  # the last error, for failed (and retried) jobs


@dataclass(frozen=True)
class JobOverview:
    backend: str  # "rq" or "in-process"
    counts: dict[str, int]
    jobs: list[JobView] = field(default_factory=list)


def rq_connection(store: Store) -> Any:
    """The Redis connection RQ can use (None with the memory store, or a Redis Cluster, which RQ does not
    support: jobs then run in-process)."""
    connection = getattr(store, "rq_connection", None)
    return connection() if connection is not None else None


def enqueue(
    store: Store,
    task: str,
    kwargs: dict[str, Any],
    *,
    description: str,
    job_id: str | None = None,
    runtime: Runtime | None = None,
    delay: float = 0.0,
    timeout: int = 300,
) -> str:
    """Run `task` (a name in broker.jobs.registry.TASKS) with `kwargs` in the background; returns the job id.
    On RQ when the store is Redis; else in this process with `runtime` (required then). `delay` holds the
    first try back (in-process only: on RQ a worker takes the job at once)."""
    job_id = job_id or f"{task}-{uuid.uuid4().hex[:20]}"
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {job_id}: task arguments must be plain JSON ({exc})") from exc
    connection = rq_connection(store)
    if connection is None:
        if runtime is None:
            raise ValueError(f"job {job_id}: no Redis queue, and no runtime to run it in this process")
        _in_process.submit(runtime, job_id, description, task, kwargs, delay)
    else:
        from rq import Queue, Retry

        Queue(QUEUE_NAME, connection=connection, serializer=SERIALIZER).enqueue_call(
            run_task, args=(task, kwargs), job_id=job_id, description=description,
            retry=Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS)),
            failure_ttl=KEEP_FAILED_SECONDS, result_ttl=KEEP_DONE_SECONDS, timeout=timeout,
        )  # fmt: skip
    log.info("job queued id=%s %s", job_id, description)
    return job_id


def converge_job_id(portal: str, email: str) -> str:
    # one job per account: enqueued again, it is replaced by the newer claims rather than run twice in parallel
    return f"converge-{portal}-{hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]}"


def enqueue_converge(rt: Runtime, portal: str, claims: Claims, why: str) -> str:
    """Hand the rest of an account's provisioning to a background job; returns the job id."""
    return enqueue(
        rt.store, "converge_account", {"portal": portal, "claims": claims_to_dict(claims)},
        description=f"converge {claims.email} on {portal} ({why})", job_id=converge_job_id(portal, claims.email),
        runtime=rt, delay=IN_PROCESS_FIRST_DELAY,
    )  # fmt: skip


def overview(store: Store, *, details: bool = True) -> JobOverview:
    """Counts by state and, with `details`, the last jobs of each state but finished."""
    connection = rq_connection(store)
    return _in_process.overview() if connection is None else _rq_overview(connection, details)


def _rq_overview(connection: Any, details: bool) -> JobOverview:
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    queue = Queue(QUEUE_NAME, connection=connection, serializer=SERIALIZER)
    registries = {
        "running": StartedJobRegistry(queue=queue),
        "scheduled": ScheduledJobRegistry(queue=queue),
        "failed": FailedJobRegistry(queue=queue),
        "finished": FinishedJobRegistry(queue=queue),
    }
    counts = {"queued": queue.count, **{state: reg.count for state, reg in registries.items()}}
    if not details:
        return JobOverview("rq", counts)
    ids = [(job_id, "queued") for job_id in queue.get_job_ids(0, SHOWN)]
    for state in ("running", "scheduled", "failed"):
        ids += [(job_id, state) for job_id in registries[state].get_job_ids(0, SHOWN - 1)]
    jobs = []
    for (job_id, state), job in zip(
        ids, Job.fetch_many([i for i, _ in ids], connection=connection, serializer=SERIALIZER), strict=True
    ):
        if job is None:
            continue
        reason = _last_line(_error_text(job)) or None
        jobs.append(JobView(job_id, job.description or job_id, state, job.enqueued_at, job.ended_at,
                            job.retries_left, reason))  # fmt: skip
    return JobOverview("rq", counts, jobs)


def job_states(store: Store, job_ids: list[str]) -> list[JobView]:
    """The state of these RQ jobs (queued, running, scheduled for a retry, failed, finished; "gone" when
    expired), for a command that waits for its jobs. Empty without a Redis queue."""
    connection = rq_connection(store)
    if connection is None:
        return []
    from rq.job import Job

    states = {"queued": "queued", "started": "running", "scheduled": "scheduled", "deferred": "queued",
              "failed": "failed", "finished": "finished", "stopped": "failed", "canceled": "failed"}  # fmt: skip
    views = []
    for job_id, job in zip(
        job_ids, Job.fetch_many(job_ids, connection=connection, serializer=SERIALIZER), strict=True
    ):
        if job is None:
            views.append(JobView(job_id, job_id, "gone"))
            continue
        status = job.get_status(refresh=False)
        state = states.get(str(getattr(status, "value", status)), str(status))
        views.append(JobView(job_id, job.description or job_id, state, job.enqueued_at, job.ended_at,
                             job.retries_left, _last_line(_error_text(job)) or None))  # fmt: skip
    return views


def _error_text(job: Any) -> str:
    """The job's last error: what the job noted (retried jobs keep no error text in RQ), else its last result."""
    if job.meta.get("last_error"):
        return str(job.meta["last_error"])
    result = job.latest_result()
    return str(getattr(result, "exc_string", None) or "") if result is not None else ""


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


_Job = tuple["Runtime", JobView, str, dict]  # runtime, how it shows, task name, its arguments


class _InProcess:
    """Jobs in this process (memory store): four daemon threads take jobs from a queue; a failed job goes back
    in after IN_PROCESS_INTERVALS (a daemon timer, so nothing waits for it at exit); the last jobs are kept for
    the admin page."""

    WORKERS = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._jobs: OrderedDict[str, JobView] = OrderedDict()

    def _set(self, view: JobView) -> None:
        with self._lock:
            self._jobs[view.id] = view
            self._jobs.move_to_end(view.id)
            while len(self._jobs) > 200:
                self._jobs.popitem(last=False)

    def submit(
        self, rt: Runtime, job_id: str, description: str, task: str, kwargs: dict, delay: float
    ) -> None:
        with self._lock:
            while len(self._threads) < self.WORKERS:
                thread = threading.Thread(target=self._work, name="broker-job", daemon=True)
                thread.start()
                self._threads.append(thread)
        view = JobView(
            job_id, description, "scheduled", datetime.now(UTC), retries_left=len(IN_PROCESS_INTERVALS)
        )
        self._set(view)
        self._later(delay, (rt, view, task, kwargs))

    def _later(self, seconds: float, job: _Job) -> None:
        if seconds <= 0:
            self._queue.put(job)
            return
        timer = threading.Timer(seconds, self._queue.put, args=(job,))
        timer.daemon = True  # nothing waits for a pending retry at exit
        timer.start()

    def _work(self) -> None:
        while True:
            rt, view, task, kwargs = self._queue.get()
            self._set(replace(view, state="running"))
            try:
                run_task(task, kwargs, rt)
            except Exception as exc:  # noqa: BLE001 - a job's failure is recorded and retried, never raised
                self._failed(rt, replace(view, reason=f"{type(exc).__name__}: {exc}"[:500]), task, kwargs)
            else:
                self._set(replace(view, state="finished", ended_at=datetime.now(UTC)))

    def _failed(self, rt: Runtime, view: JobView, task: str, kwargs: dict) -> None:
        left = view.retries_left or 0
        log.warning("job %s failed (%d retries left): %s", view.id, left, view.reason)
        if left <= 0:
            self._set(replace(view, state="failed", ended_at=datetime.now(UTC)))
            return
        view = replace(view, state="scheduled", retries_left=left - 1)
        self._set(view)
        self._later(IN_PROCESS_INTERVALS[len(IN_PROCESS_INTERVALS) - left], (rt, view, task, kwargs))

    def overview(self) -> JobOverview:
        with self._lock:
            jobs = list(reversed(self._jobs.values()))
        counts = {state: sum(1 for j in jobs if j.state == state)
                  for state in ("queued", "running", "scheduled", "failed", "finished")}  # fmt: skip
        return JobOverview("in-process", counts, [j for j in jobs if j.state != "finished"][:SHOWN])


_in_process = _InProcess()
