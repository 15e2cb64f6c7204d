"""Bulk pre-provisioning (`broker provision`) from a CSV file or from rows made elsewhere (an Entra group's
members): each row is one `sync_user`.

CSV columns: `email` (required), `first_name`, `last_name`, `groups` (names joined by `;`); other columns go to
`Claims.extra`. A progress file lists the emails done, one a line, so an interrupted run resumes where it
stopped and a rerun retries only the rows that failed. A dry run reads LearnUpon and reports the plan.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from broker.clients.learnupon import LearnUponClient, LearnUponError
from broker.config import GroupProfile
from broker.model import Claims
from broker.provisioning.plan import ProvisioningSettings
from broker.provisioning.sync import SyncOutcome, SyncPlan, dry_run, sync_user
from broker.rules.portal_groups import portal_groups
from broker.store import Store

KNOWN_COLUMNS = {"email", "first_name", "last_name", "groups"}

# (line number or position, the user's claims, or why the row cannot be used)
Row = tuple[int, Claims | str]


@dataclass
class BulkSummary:
    """Counts of a run; `failures` and `invalid` hold (row's line or position, email or text, reason)."""

    total: int = 0
    synced: int = 0
    unchanged: int = 0
    skipped: int = 0  # done in an earlier run (progress file)
    failed: int = 0
    planned: int = 0  # dry run: rows whose plan is not empty
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.invalid


def read_rows(path: Path, *, group_separator: str = ";") -> Iterator[Row]:
    """(line number, claims) per row, or (line, reason) for a row that cannot be used."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in reader.fieldnames:
            raise ValueError(f"{path}: the first line must name the columns, including 'email'")
        for row in reader:
            line = reader.line_num
            email = (row.get("email") or "").strip()
            if "@" not in email:
                yield line, f"no valid email ({email!r})"
                continue
            groups = tuple(g.strip() for g in (row.get("groups") or "").split(group_separator) if g.strip())
            extra: dict[str, tuple[str, ...]] = {
                k: (v,) for k, v in row.items() if k and k not in KNOWN_COLUMNS and v
            }
            yield (
                line,
                Claims(
                    email=email,
                    first_name=(row.get("first_name") or "").strip(),
                    last_name=(row.get("last_name") or "").strip(),
                    groups=groups,
                    extra=extra,
                ),
            )


def add_only_settings(settings: ProvisioningSettings) -> ProvisioningSettings:
    """Settings for rows that are one of the user's many groups (`--from-group`): add only — no removal, no
    unenrolment, no user type."""
    no_unenroll = [rule.model_copy(update={"unenroll": False}) for rule in settings.enrollments]
    return settings.model_copy(
        update={"managed_groups": [], "managed_group_patterns": [], "user_type_rules": [],
                "enrollments": no_unenroll}
    )  # fmt: skip


def _done_emails(progress: Path | None) -> set[str]:
    if progress is None or not progress.exists():
        return set()
    return {
        line.strip().lower() for line in progress.read_text(encoding="utf-8").splitlines() if line.strip()
    }


def provision_csv(
    csv_path: Path,
    portal: str,
    settings: ProvisioningSettings,
    client: LearnUponClient,
    store: Store,
    *,
    group_profile: GroupProfile,
    progress_path: Path | None = None,
    dry: bool = False,
    budget_seconds: float | None = None,
    group_separator: str = ";",
    on_row: Callable[[int, str, SyncOutcome | SyncPlan | str], None] | None = None,
) -> BulkSummary:
    """`provision_rows` for the rows of a CSV file."""
    return provision_rows(
        read_rows(csv_path, group_separator=group_separator),
        portal,
        settings,
        client,
        store,
        group_profile=group_profile,
        progress_path=progress_path,
        dry=dry,
        budget_seconds=budget_seconds,
        on_row=on_row,
    )


def provision_rows(
    rows: Iterable[Row],
    portal: str,
    settings: ProvisioningSettings,
    client: LearnUponClient,
    store: Store,
    *,
    group_profile: GroupProfile,
    progress_path: Path | None = None,
    dry: bool = False,
    budget_seconds: float | None = None,
    on_row: Callable[[int, str, SyncOutcome | SyncPlan | str], None] | None = None,
) -> BulkSummary:
    """Sync every row; never stops at a failed row (the policy is `continue` whatever the portal says).
    Each row's groups go through the portal's `group_profile` (`portal_groups`), as a login's would.

    `budget_seconds` replaces the per-login budget (a bulk run can afford to wait out rate limits).
    `on_row(line, email, result)` is called after each row, for progress output.
    """
    changes: dict[str, object] = {"on_failure": "continue", "enabled": True}
    if budget_seconds is not None:
        changes["budget_seconds"] = budget_seconds
    row_settings = settings.model_copy(update=changes)
    done = _done_emails(progress_path)
    summary = BulkSummary()
    progress = progress_path.open("a", encoding="utf-8") if progress_path and not dry else None
    try:
        for line, item in rows:
            summary.total += 1
            if isinstance(item, str):
                summary.invalid.append((line, "", item))
                _notify(on_row, line, "", item)
                continue
            if item.email.lower() in done:
                summary.skipped += 1
                _notify(on_row, line, item.email, "skipped")
                continue
            groups = portal_groups(item.groups, group_profile)
            if dry:
                try:
                    plan = dry_run(portal, item, row_settings, client, store, groups=groups)
                except LearnUponError as exc:
                    summary.failed += 1
                    summary.failures.append((line, item.email, str(exc)))
                    _notify(on_row, line, item.email, str(exc))
                    continue
                summary.planned += bool(plan.calls)
                _notify(on_row, line, item.email, plan)
                continue
            result = sync_user(portal, item, row_settings, client, store, groups=groups)
            if result.ok:
                summary.synced += result.status == "synced"
                summary.unchanged += result.status == "unchanged"
                done.add(item.email.lower())
                if progress is not None:
                    progress.write(item.email + "\n")
                    progress.flush()  # each finished row survives an interruption
            else:
                summary.failed += 1
                summary.failures.append((line, item.email, result.error or "failed"))
            _notify(on_row, line, item.email, result)
    finally:
        if progress is not None:
            progress.close()
    return summary


def _notify(on_row: Callable | None, line: int, email: str, result: object) -> None:
    if on_row is not None:
        on_row(line, email, result)
