"""The one way to review (and maybe apply to) a portal, shared by `broker review` and /admin/review."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from broker.clients.directory import Directory
from broker.config import Config
from broker.errors import BrokerError
from broker.review.apply import apply_review, review_lock
from broker.review.run import PortalReview, SnapshotCache, review_portal, save_report
from broker.review.sources import build_directory, learnupon_client
from broker.store import Store


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
            result = apply_review(review, learnupon, store, max_changes=max_changes, actor=actor)
            save_report(store, applied_view(review, [f.account.id for f in result.done], actor))
            report["applied"] = {
                "changed": [f.account.id for f in result.done],
                "earlier_run": result.earlier,
                "error": result.error,
            }
    return report


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
