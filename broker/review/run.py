"""One review of one portal: list its LearnUpon users, read the directories of its upstreams, categorise, and
keep the result in the store (the admin page and the Prometheus gauge read it from there)."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker.clients.directory import Directory, DirectorySnapshot, DirectoryUnavailable
from broker.clients.learnupon import LearnUponClient
from broker.config import Config
from broker.review.categorise import DirectoryView, categorise
from broker.review.model import CATEGORIES, Account, Finding
from broker.review.sources import portal_policy
from broker.store import Store, keys

log = logging.getLogger(__name__)

REPORT_TTL = 40 * 86400  # a monthly review's report stays visible until the next one


@dataclass
class PortalReview:
    """The outcome of reviewing one portal: a finding per LearnUpon account, what each directory answered."""

    portal: str
    generated_at: datetime
    findings: list[Finding]
    directories: dict[str, str]  # upstream → "read: 812 users, 3 requests" or why it was not
    notes: list[str] = field(default_factory=list)
    max_changes_percent: float = 5.0

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(f.category for f in self.findings)
        return {category: found.get(category, 0) for category in CATEGORIES}

    @property
    def changes(self) -> list[Finding]:
        """The findings `--apply` would act on."""
        return [f for f in self.findings if f.action is not None]

    @property
    def default_max_changes(self) -> int:
        """`max_changes_percent` of the portal's users, at least 1."""
        return max(1, math.floor(len(self.findings) * self.max_changes_percent / 100))

    def as_dict(self, *, entitled: bool = True) -> dict[str, Any]:
        """JSON-ready; without `entitled` the entitled accounts are counted but not listed (what the store
        keeps: the accounts worth a look)."""
        return {
            "portal": self.portal,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "users": len(self.findings),
            "counts": self.counts,
            "changes": len(self.changes),
            "default_max_changes": self.default_max_changes,
            "directories": dict(self.directories),
            "notes": list(self.notes),
            "accounts": [f.as_dict() for f in self.findings if entitled or f.category != "entitled"],
        }


class SnapshotCache:
    """Each directory read once per review run, even when several portals use it with the same groups."""

    def __init__(self, directories: Mapping[str, Directory | None]):
        self.directories = directories
        self._views: dict[tuple[str, tuple[str, ...]], tuple[DirectoryView, str]] = {}

    def view(self, upstream: str, groups: tuple[str, ...]) -> tuple[DirectoryView, str]:
        """(the snapshot or why there is none, a one-line description for the report)."""
        key = (upstream, groups)
        if key not in self._views:
            self._views[key] = self._read(upstream, groups)
        return self._views[key]

    def _read(self, upstream: str, groups: tuple[str, ...]) -> tuple[DirectoryView, str]:
        directory = self.directories.get(upstream)
        if directory is None:
            why = f"no directory configured (upstreams.{upstream}.directory)"
            return why, why
        try:
            snap = directory.snapshot(groups)
        except DirectoryUnavailable as exc:
            log.warning("review: directory of upstream %s unreachable: %s", upstream, exc)
            return str(exc), f"unreachable: {exc}"
        groups_found = f", {len(snap.routing_groups)} routing groups" if groups else ""
        return snap, (f"{snap.kind}: read {len(snap.users)} users{groups_found} "
                      f"in {snap.requests} requests")  # fmt: skip


def review_portal(
    config: Config,
    portal: str,
    learnupon: LearnUponClient,
    snapshots: SnapshotCache,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PortalReview:
    """Review one portal (no change is made). LearnUpon errors propagate: without the user list there is
    nothing to review."""
    policy = portal_policy(config, portal)
    accounts = [Account.from_api(user) for user in learnupon.list_users()]
    views: dict[str, DirectoryView] = {}
    described: dict[str, str] = {}
    notes: list[str] = []
    for upstream in config.portals[portal].upstream_names:
        view, description = snapshots.view(upstream, policy.required_groups)
        views[upstream] = view
        described[upstream] = description
        if isinstance(view, DirectorySnapshot):
            notes.extend(view.notes)
            if policy.required_groups and not view.routing_groups:
                notes.append(f"{upstream}: no group matches required_groups {list(policy.required_groups)}")
    findings = categorise(accounts, views, policy, now())
    return PortalReview(portal, now(), findings, described, notes, policy.settings.max_changes_percent)


def save_report(store: Store, review: PortalReview) -> None:
    """Keep the latest report of the portal in the store, for the admin page and the metrics gauge."""
    data = json.dumps(review.as_dict(entitled=False), separators=(",", ":")).encode()
    store.put(keys.review_report(review.portal), data, REPORT_TTL)


def load_report(store: Store, portal: str) -> dict[str, Any] | None:
    """The latest saved report of a portal (entitled accounts counted, not listed), or None."""
    raw = store.get(keys.review_report(portal))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def all_portals(config: Config) -> list[str]:
    return sorted(config.portals)
