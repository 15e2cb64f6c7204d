"""The one way to review (and maybe apply to) a portal, shared by `broker review` and /admin/review.

With Redis, applying is a background job (`review_apply`, run by `broker worker`): the review is made and
saved here, the limit checked, and the job gets the accounts confirmed. The job reviews again under the
portal's lock and changes only confirmed accounts that still need it, so it is idempotent: run twice (or
retried after a LearnUpon error) it changes nothing twice. With the memory store it applies at once, as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from broker.clients.directory import Directory
from broker.config import Config
from broker.errors import BrokerError
from broker.jobs.queue import enqueue, rq_connection
from broker.jobs.registry import JobFailed
from broker.review.apply import apply_review, check_limit, load_checkpoint, review_lock
from broker.review.run import PortalReview, SnapshotCache, review_portal, save_report
from broker.review.sources import build_directory, learnupon_client
from broker.store import Store

if TYPE_CHECKING:
    from broker.runtime import Runtime


def directories_for(config: Config, portals: list[str], env: Mapping[str, str] = os.environ) -> SnapshotCache:
    """A snapshot cache over the directories of the upstreams these portals use."""
    upstreams = {u for p in portals for u in config.portals[p].upstream_names}
    built: dict[str, Directory | None] = {u: build_directory(config, u, env) for u in sorted(upstreams)}
    return SnapshotCache(built)


def review_and_maybe_apply(
    config: Config,
    store: Store,
    portal: str,
    snapshots: SnapshotCache,
    *,
    apply: bool = False,
    max_changes: int | None = None,
    expect_changes: int | None = None,
    actor: str = "cli",
    env: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """Review one portal under its lock, save the report, apply when asked; the report as JSON-ready data
    (with an `applied` entry after --apply). `expect_changes` (the admin page's confirmation) refuses to apply
    when the fresh review finds a different number of changes than the admin confirmed."""
    learnupon = learnupon_client(config, portal, env)
    with review_lock(store, portal):
        review = review_portal(config, portal, learnupon, snapshots)
        save_report(store, review)
        report = review.as_dict()
        if apply:
            if expect_changes is not None and expect_changes != len(review.changes):
                raise BrokerError(
                    f"the review of portal {portal} now finds {len(review.changes)} changes, not the "
                    f"{expect_changes} confirmed; nothing was changed. Look at the new report and confirm again"
                )
            if rq_connection(store) is not None:
                report["applied"] = _queue_apply(store, review, max_changes, actor)
                return report
            result = apply_review(review, learnupon, store, max_changes=max_changes, actor=actor)
            save_report(store, applied_view(review, [f.account.id for f in result.done], actor))
            report["applied"] = {
                "changed": [f.account.id for f in result.done],
                "earlier_run": result.earlier,
                "error": result.error,
            }
    return report


def _queue_apply(store: Store, review: PortalReview, max_changes: int | None, actor: str) -> dict[str, Any]:
    """Check the limit now (nothing is queued beyond it), then queue the confirmed changes as one job."""
    limit = check_limit(review, load_checkpoint(store, review.portal), max_changes, actor)
    confirmed = sorted(f.account.id for f in review.changes)
    job_id = enqueue(
        store, "review_apply", {"portal": review.portal, "confirmed": confirmed, "limit": limit, "actor": actor},
        job_id=f"review-apply-{review.portal}-{review.generated_at:%Y%m%dT%H%M%S}",
        description=f"apply the access review of {review.portal}: {len(confirmed)} changes ({actor})",
        timeout=3600,
    )  # fmt: skip
    return {"queued": job_id, "changes": len(confirmed), "changed": [], "earlier_run": 0, "error": None}


def apply_confirmed(rt: Runtime, *, portal: str, confirmed: list[int], limit: int, actor: str) -> str:
    """The `review_apply` task: review again under the lock, then change the confirmed accounts that still
    need it (an account changed meanwhile, or by an earlier try, is no longer a change: nothing twice)."""
    if portal not in rt.config.portals:
        raise JobFailed(f"portal {portal} is not in this worker's configuration")
    learnupon = learnupon_client(rt.config, portal)
    snapshots = directories_for(rt.config, [portal])
    wanted = set(confirmed)
    with review_lock(rt.store, portal):
        review = review_portal(rt.config, portal, learnupon, snapshots)
        # only what the operator confirmed: a change the fresh review adds waits for the next review
        scoped = replace(review, findings=[f if f.account.id in wanted else replace(f, action=None)
                                           for f in review.findings])  # fmt: skip
        result = apply_review(scoped, learnupon, rt.store, max_changes=limit, actor=actor)
        save_report(rt.store, applied_view(review, [f.account.id for f in result.done], actor))
    if result.error is not None:
        raise JobFailed(f"{len(result.done)} accounts changed, then: {result.error}")
    return f"{len(result.done)} accounts changed ({result.earlier} by an earlier try)"


def applied_view(review: PortalReview, changed: list[int], actor: str) -> PortalReview:
    """The review as it stands after its changes: changed accounts carry no further action, and say so."""
    done = set(changed)
    findings = []
    for f in review.findings:
        if f.account.id in done and f.action is not None:
            account = replace(f.account, enabled=False)
            f = replace(f, account=account, action=None, reason=f"{f.reason} — {f.action}d by {actor}")
        findings.append(f)
    return replace(review, findings=findings)
