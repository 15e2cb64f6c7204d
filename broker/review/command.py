"""`broker review`: the access review from the command line (a dry run unless --apply), and the one function
both the command and the admin page call to review (and maybe apply to) one portal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from broker.errors import BrokerError

if TYPE_CHECKING:  # imported when a review runs, so `broker --help` stays quick
    from broker.config import Config
    from broker.review.run import PortalReview, SnapshotCache
    from broker.store import Store

FORMATS = ("text", "csv", "json", "html")


def directories_for(config: Config, portals: list[str], env: Mapping[str, str] = os.environ) -> SnapshotCache:
    """A snapshot cache over the directories of the upstreams these portals use."""
    from broker.clients.directory import Directory
    from broker.review.run import SnapshotCache
    from broker.review.sources import build_directory

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
    from broker.review.apply import apply_review, review_lock
    from broker.review.run import review_portal, save_report
    from broker.review.sources import learnupon_client

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
    from dataclasses import replace

    done = set(changed)
    findings = []
    for f in review.findings:
        if f.account.id in done and f.action is not None:
            account = replace(f.account, enabled=False)
            f = replace(f, account=account, action=None, reason=f"{f.reason} — {f.action}d by {actor}")
        findings.append(f)
    return replace(review, findings=findings)


@click.command("review")
@click.argument("portal", required=False)
@click.option("--all", "all_portals", is_flag=True, help="Review every portal.")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="YAML config file.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
@click.option("--apply", "do_apply", is_flag=True, help="Make the changes (default: a dry run).")
@click.option("--max-changes", type=click.IntRange(min=0), default=None,
              help="Refuse to change more accounts than this (default: portals.X.review.max_changes_percent, 5%).")  # fmt: skip
def review(portal: str | None, all_portals: bool, config_path: Path, fmt: str, out: Path | None,
           do_apply: bool, max_changes: int | None) -> None:  # fmt: skip
    """Compare each LearnUpon user of PORTAL (or --all) with the upstream directories: entitled, orphan,
    never signed in, inactive, admin (never changed), unknown (directory unreachable: never acted on)."""
    from broker.config import load_config
    from broker.review.report import render
    from broker.store import open_store

    if all_portals == (portal is not None):
        raise click.UsageError("name one PORTAL or give --all")
    config = load_config(config_path)
    if config.broker.demo:
        # the demo's fakes check demo-only credentials; a demo config gets them as `broker demo` does
        from broker.demo.run import DEMO_SECRETS

        for variable, value in DEMO_SECRETS.items():
            os.environ.setdefault(variable, value)
    if portal is not None and portal not in config.portals:
        raise click.ClickException(f"unknown portal {portal!r} (known: {', '.join(sorted(config.portals))})")
    portals = sorted(config.portals) if all_portals else [portal]
    store = open_store(config.store.url)
    snapshots = directories_for(config, portals)
    reports: list[dict[str, Any]] = []
    failures: list[str] = []
    for name in portals:
        try:
            reports.append(review_and_maybe_apply(config, store, name, snapshots, apply=do_apply,
                                                  max_changes=max_changes))  # fmt: skip
        except BrokerError as exc:
            failures.append(f"portal {name}: {exc}")
    text = render(reports, fmt)  # type: ignore[arg-type]
    if out is not None:
        out.write_text(text, encoding="utf-8")
    elif reports:
        click.echo(text, nl=False)
    stopped = [f"portal {r['portal']}: stopped early: {r['applied']['error']}" for r in reports
               if r.get("applied", {}).get("error")]  # fmt: skip
    for line in failures + stopped:
        click.echo(f"broker review: {line}", err=True)
    if failures or stopped:
        raise SystemExit(1)
