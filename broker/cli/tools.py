"""`broker check` and `broker simulate`: is a deployment ready, and what would a login do."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from broker.cli.base import config_option, fail, read_config


@click.command()
@config_option
@click.option("--online", is_flag=True, help="Also make one harmless call to Graph and each LearnUpon API.")
def check(config_path: Path, online: bool) -> None:
    """Check a deployment: config, keys, certificate expiry, upstream metadata, store, credentials.

    One line per check: OK, WARN or FAIL. Exit status 1 when anything FAILs.

    \b
    Example:
      broker check --config config/broker.yaml --online
    """
    from broker.tools.check import run_checks, worst

    results = run_checks(config_path, online=online)
    for result in results:
        first, *rest = result.line().splitlines()
        click.echo(first)
        for line in rest:
            click.echo(f"      {line}")
    counts = Counter(r.status for r in results)
    click.echo(f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL")
    if worst(results) == "FAIL":
        sys.exit(1)


@click.command()
@config_option
@click.option("--portal", help="Portal asked for (as /login/PORTAL); without it, the routing rules decide.")
@click.option(
    "--claims",
    "claims_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help='JSON: {"name_id": ..., "attributes": {"<claim name>": ["value", ...]}} or canonical fields '
    '{"email": ..., "first_name": ..., "groups": [...]}.',
)
@click.option("--upstream", help="Upstream IdP the claims come from (needed when the portal has several).")
@click.option(
    "--offline", is_flag=True, help="Ask neither LearnUpon nor Graph; plan against an empty portal."
)
def simulate(
    config_path: Path, portal: str | None, claims_path: Path, upstream: str | None, offline: bool
) -> None:
    """Run the login pipeline offline from a claims file: claims, groups (and where each name came from),
    routing, outgoing attributes, the provisioning plan (dry run) and an unsigned preview of the assertion.

    Exit status 1 when the login would be refused.

    \b
    Example:
      broker simulate --config config/broker.yaml --portal academy --claims alex.json --offline
    """
    from broker.tools.simulate import (
        SimulationInputError,
        format_simulation,
        read_claims_file,
        run_simulation,
        tools_runtime,
    )

    config = read_config(config_path)
    try:
        document = read_claims_file(claims_path)
        tools = tools_runtime(config, offline=offline)
        sim = run_simulation(tools.rt, document, portal=portal, upstream=upstream, offline=offline)
    except SimulationInputError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_simulation(sim, tools.notes), nl=False)
    if sim.refused is not None:
        fail(f"the login would be refused at {sim.refused[0]}: {sim.refused[1]}")
