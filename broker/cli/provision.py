"""`broker provision`: create or update a portal's users in bulk, from a CSV file or an Entra group."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from broker.cli.base import EXIT_INTERRUPTED, config_option, fail, known_portal, read_config

if TYPE_CHECKING:
    from broker.provisioning.bulk import Row
    from broker.provisioning.from_group import GroupMembers


@click.command()
@click.argument("portal")
@config_option
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), help="email,first_name,last_name,groups (;-separated), other columns as custom data.")  # fmt: skip
@click.option("--from-group", "group", metavar="NAME", help="Members of this Entra group (name or object ID), from Microsoft Graph.")  # fmt: skip
@click.option(
    "--upstream", help="The upstream whose Graph settings --from-group uses (when several have them)."
)
@click.option("--dry-run", is_flag=True, help="Read LearnUpon and report what would change; change nothing.")
@click.option("--progress", "progress_path", type=click.Path(path_type=Path, dir_okay=False), help="Resume file (default: <csv>.progress, or <portal>-<group>.progress); removed when every row is done.")  # fmt: skip
@click.option("--budget", default=90.0, show_default=True, type=click.FloatRange(1, 600), help="Seconds one row may take, waiting out rate limits included.")  # fmt: skip
@click.option("--in-process", is_flag=True, help="With Redis: sync the rows in this command instead of queueing jobs for `broker worker`.")  # fmt: skip
@click.option("--rows-per-job", default=50, show_default=True, type=click.IntRange(1, 1000), help="With Redis: rows in one job (a retry redoes its rows).")  # fmt: skip
@click.option("--wait", is_flag=True, help="With Redis: wait until the queued jobs are done (or one waits for a retry) and sum them up.")  # fmt: skip
def provision(
    portal: str,
    config_path: Path,
    csv_path: Path | None,
    group: str | None,
    upstream: str | None,
    dry_run: bool,
    progress_path: Path | None,
    budget: float,
    in_process: bool,
    rows_per_job: int,
    wait: bool,
) -> None:
    """Create or update LearnUpon users ahead of their first login, from a CSV file or an Entra group.

    Each row is synced as a login would sync it (user, groups, enrollments). With the memory store (or
    --in-process) this command syncs the rows: rows done are written to the progress file, so an interrupted
    or failed run continues where it stopped when run again. With Redis the rows become background jobs
    (--rows-per-job each) that `broker worker` processes run and retry; /admin/jobs shows them. --from-group
    only adds: it removes no membership and changes no user type (the group is one of the user's many).

    \b
    Example:
      broker provision academy --config config/broker.yaml --csv users.csv --dry-run
    """
    from broker.jobs.queue import rq_connection
    from broker.provisioning.bulk import add_only_settings, read_rows
    from broker.provisioning.sync import build_client
    from broker.store.connect import open_store

    if (csv_path is None) == (group is None):
        raise click.UsageError("give either --csv FILE or --from-group NAME")
    config = read_config(config_path)
    settings = config.portals[known_portal(config, portal)].provisioning
    if not (settings.username_env and settings.password_env):
        raise click.ClickException(
            f"portals.{portal}.provisioning: set username_env and password_env (the API key pair) to provision"
        )
    rows: list[Row]
    if group is not None:
        # one of the user's many groups: add only (no removal, no unenrolment, no user type)
        settings = add_only_settings(settings)
        found, default_progress = _group_members(config, portal, group, upstream)
        rows, source, row_label = list(enumerate(found.members, 1)), f"Entra group {found.name}", "member"
    else:
        assert csv_path is not None
        try:
            rows = list(read_rows(csv_path))
        except OSError as exc:
            raise click.ClickException(f"{csv_path}: cannot read: {exc.strerror}") from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        source, row_label = csv_path.name, "line"
        default_progress = csv_path.with_name(csv_path.name + ".progress")
    progress_path = progress_path or default_progress
    store = open_store(config.store.url)
    if not dry_run and not in_process and rq_connection(store) is not None:
        _queue_provisioning(store, portal, rows, source, row_label, add_only=group is not None, budget=budget,
                            rows_per_job=rows_per_job, wait=wait)  # fmt: skip
        return
    client = build_client(portal, settings, max_retry_after=60)
    group_profile = config.portals[portal].groups  # the portal's groups, as its logins get them
    _run_provisioning(
        portal,
        settings,
        group_profile,
        client,
        store,
        rows,
        source,
        row_label,
        progress_path,
        dry_run,
        budget,
    )


def _group_members(config, portal: str, group: str, upstream: str | None) -> tuple[GroupMembers, Path]:
    """The members of an Entra group, read from Graph; the default progress file's path."""
    import re

    from broker.claims.groups import graph_client_for
    from broker.provisioning.from_group import group_members

    with_graph = [u for u in config.portals[portal].upstream_names if config.upstreams[u].groups.graph]
    if upstream is not None:
        if upstream not in with_graph:
            raise click.ClickException(f"upstreams.{upstream}: no groups.graph settings for portal {portal}")
        with_graph = [upstream]
    if not with_graph:
        raise click.ClickException(
            f"--from-group needs Microsoft Graph: portal {portal}'s upstream has no groups.graph"
        )
    if len(with_graph) > 1:
        raise click.ClickException(
            f"several upstreams have Graph ({', '.join(with_graph)}): choose with --upstream"
        )
    resolution = config.upstreams[with_graph[0]].groups
    with graph_client_for(resolution.graph, budget=60.0) as client:
        found = group_members(client, group, resolution.static_map)
    click.echo(f"Entra group {found.name} ({found.group_id}): {len(found.members)} members with an email")
    if found.skipped:
        click.echo(
            f"  left out, no email: {', '.join(found.skipped[:10])}{' …' if len(found.skipped) > 10 else ''}"
        )
    slug = re.sub(r"[^a-z0-9]+", "-", found.name.lower()).strip("-") or found.group_id
    return found, Path(f"{portal}-{slug}.progress")


def _queue_provisioning(store, portal: str, rows: list[Row], source: str, row_label: str, *, add_only: bool,
                        budget: float, rows_per_job: int, wait: bool) -> None:  # fmt: skip
    """Queue the rows as jobs on the store's Redis; with `wait`, wait for them and sum them up."""
    from broker.jobs.queue import job_states
    from broker.provisioning.bulk_jobs import enqueue_rows

    valid = [(line, item) for line, item in rows if not isinstance(item, str)]
    invalid = [(line, item) for line, item in rows if isinstance(item, str)]
    job_ids = enqueue_rows(store, portal, valid, add_only=add_only, budget_seconds=budget, source=source,
                           chunk_rows=rows_per_job)  # fmt: skip
    click.echo(f"{portal}: {len(valid)} rows from {source} queued as {len(job_ids)} jobs on the store's Redis; "
               "`broker worker` runs them, /admin/jobs shows them")  # fmt: skip
    for line, reason in invalid[:10]:
        click.echo(f"  {row_label} {line}: {reason} (not queued: fix the CSV)")
    if not wait:
        if invalid:
            fail(f"{len(invalid)} rows not usable (fix the CSV)")
        return
    while True:
        states = job_states(store, job_ids)
        counts = Counter(view.state for view in states)
        if counts["queued"] + counts["running"] == 0:
            break
        time.sleep(0.5)
    click.echo("  " + ", ".join(f"{state} {counts[state]}" for state in sorted(counts)))
    stuck = [view for view in states if view.state != "finished"]
    for view in stuck[:10]:
        click.echo(f"  {view.description}: {view.state}: {view.reason or '-'}")
    if stuck or invalid:
        fail(f"{len(stuck)} of {len(job_ids)} jobs not done (retried by `broker worker`: see /admin/jobs)"
             + (f"; {len(invalid)} rows not usable" if invalid else ""))  # fmt: skip


def _run_provisioning(portal, settings, group_profile, client, store, rows: list[Row], source: str, row_label: str,
                      progress_path: Path, dry_run: bool, budget: float) -> None:  # fmt: skip
    from broker.ops.observability import diverted_logs
    from broker.provisioning.bulk import provision_rows
    from broker.provisioning.sync import SyncOutcome, SyncPlan

    counts: Counter[str] = Counter()
    planned: list[str] = []  # dry run: what the first rows would get, named as the portal's logins get it

    def tally(email: str, result: SyncOutcome | SyncPlan | str) -> str:
        if isinstance(result, str):  # "skipped", or why the row is invalid (no email) or failed (dry run)
            return "skipped" if result == "skipped" else "failed" if email else "invalid"
        if isinstance(result, SyncOutcome) and not result.ok:
            return "failed"
        ops = {call.op for call in result.calls}
        return "created" if "create_user" in ops else "updated" if ops else "unchanged"

    started = time.monotonic()
    label = f"{'Planning' if dry_run else 'Provisioning'} {portal}"
    summary = None
    # each failed row is listed in the summary; the warning logged for it would repeat it on stderr
    try:
        with (
            diverted_logs(logging.NullHandler()),
            click.progressbar(length=len(rows), label=label, file=sys.stderr) as bar,
        ):

            def on_row(line: int, email: str, result: SyncOutcome | SyncPlan | str) -> None:
                counts[tally(email, result)] += 1
                if isinstance(result, SyncPlan) and len(planned) < 10:
                    enrolments = "; ".join(result.desired.planned_enrollments()) or "-"
                    planned.append(f"  {row_label} {line}: {email}: groups {'; '.join(result.desired.groups) or '-'}"
                                   f"; enrolments {enrolments}")  # fmt: skip
                bar.update(1)

            summary = provision_rows(
                rows, portal, settings, client, store, group_profile=group_profile, progress_path=progress_path, dry=dry_run,
                budget_seconds=budget, on_row=on_row,
            )  # fmt: skip
    except KeyboardInterrupt:
        done = counts["created"] + counts["updated"] + counts["unchanged"]
        fail(
            f"interrupted after {sum(counts.values())} rows ({done} done); run the same command again to "
            f"continue (progress in {progress_path})",
            EXIT_INTERRUPTED,
        )
    finally:
        client.session.close()
    assert summary is not None
    elapsed = time.monotonic() - started
    processed = sum(counts[k] for k in ("created", "updated", "unchanged", "failed"))
    would = "would be " if dry_run else ""
    click.echo(f"{'Dry run: ' if dry_run else ''}{portal}, {summary.total} rows from {source}")
    for key, meaning in (
        ("created", f"users {would}created"),
        ("updated", f"users {would}updated"),
        ("unchanged", "already as wanted"),
        ("failed", "failed: run again to retry" if not dry_run else "could not be read"),
        ("skipped", f"done in an earlier run ({progress_path})"),
        ("invalid", "not usable (fix the CSV)"),
    ):
        click.echo(f"  {key:<10} {counts[key]:>7}   {meaning}")
    rate = processed / elapsed if elapsed > 0 else 0.0
    click.echo(f"  {'total':<10} {summary.total:>7}   in {elapsed:.1f} s ({rate:.0f} rows/s)")
    if planned:
        click.echo("Planned (groups as the assertion will carry them):")
        for planned_line in planned:
            click.echo(planned_line)
    problems = summary.failures + summary.invalid
    for line, email, reason in problems[:10]:
        click.echo(f"  {row_label} {line}: {email + ': ' if email else ''}{reason}")
    if len(problems) > 10:
        click.echo(f"  … and {len(problems) - 10} more")
    if not dry_run and summary.failed == 0 and progress_path.exists():
        progress_path.unlink()  # every row is done: the next run is a fresh sync
    if summary.failed:
        rows_failed = "1 row" if summary.failed == 1 else f"{summary.failed} rows"
        fail(f"{rows_failed} failed; run the same command again to retry only those")
