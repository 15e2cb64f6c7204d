"""The `broker` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from broker.errors import ConfigError


@click.group()
def main() -> None:
    """LearnUpon SAML broker: SP-initiated login in, signed IdP-initiated assertion out."""


@main.command()
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
    help="Broker port; the test IdP and mock LearnUpon use the next two.",
)
def demo(demo_dir: Path, host: str, port: int) -> None:
    """Run the whole flow on localhost: broker, test IdP, mock LearnUpon.

    Example: broker demo --port 8470
    """
    from broker.demo.run import run_demo

    run_demo(demo_dir, host, port)


@main.command()
@click.option(
    "--config", "config_path", required=True, type=click.Path(path_type=Path), help="YAML config file."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def serve(config_path: Path, host: str, port: int) -> None:
    """Development server (production: gunicorn 'broker.wsgi:app').

    Example: broker serve --config config/broker.example.yaml --port 8000
    """
    from broker.app import create_app

    try:
        app = create_app(config_path)
    except ConfigError as exc:
        click.echo(f"broker: {exc}", err=True)
        sys.exit(1)
    app.run(host=host, port=port)


if __name__ == "__main__":
    main()
