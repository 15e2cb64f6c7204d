"""`broker demo`, `broker serve` and `broker worker`: running the broker, its demo and its background jobs."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cli.base import config_option, fail
from broker.errors import ConfigError


@click.command()
@click.option(
    "--dir",
    "demo_dir",
    default=".demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder for the generated demo keys.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=8470,
    show_default=True,
    help="Broker port; the test IdP, mock LearnUpon and fake Graph use the next three.",
)
def demo(demo_dir: Path, host: str, port: int) -> None:
    """Run the whole flow on localhost: broker, test IdP, mock LearnUpon.

    \b
    Example:
      broker demo --port 8470
    """
    from broker.demo.run import run_demo

    run_demo(demo_dir, host, port)


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def serve(config_path: Path, host: str, port: int) -> None:
    """Development server (production: gunicorn 'broker.wsgi:app').

    \b
    Example:
      broker serve --config config/broker.example.yaml --port 8000
    """
    from broker.app import create_app

    try:
        app = create_app(config_path)
    except ConfigError as exc:
        fail(str(exc))
    app.run(host=host, port=port)


@click.command()
@config_option
@click.option("--burst", is_flag=True, help="Run the jobs queued now, then stop (tests, cron).")
def worker(config_path: Path, burst: bool) -> None:
    """Run background jobs (leftover provisioning, `broker provision` rows, `broker review --apply`) from the
    store's Redis queue, with RQ. Run as many as you like, on as many machines: they share the queue. Retries
    wait in RQ's scheduler.

    \b
    Example:
      REDIS_URL=redis://redis:6379/0 broker worker --config config/broker.yaml
    """
    from broker.jobs.worker import run_worker

    try:
        run_worker(config_path, burst=burst)
    except ConfigError as exc:
        fail(str(exc))
