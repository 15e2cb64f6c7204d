"""`broker review`: the access review from the command line (a dry run unless --apply)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from broker.errors import BrokerError

FORMATS = ("text", "csv", "json", "html")


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
    from broker.review.service import directories_for, review_and_maybe_apply
    from broker.store.connect import open_store

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
    portals: list[str] = sorted(config.portals) if all_portals or portal is None else [portal]
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
