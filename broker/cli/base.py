"""What every `broker` command shares: one-line errors (`broker: <what>`, non-zero exit), the --config option,
reading the config and naming a portal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from broker.errors import BrokerError

EXIT_INTERRUPTED = 130


class BrokerGroup(click.Group):
    """Usage mistakes and the broker's own errors print one line, not click's usage block or a traceback."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:  # fmt: skip
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(0)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(f"{exc.format_message().rstrip('.')}{where}", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("interrupted", EXIT_INTERRUPTED)
        except BrokerError as exc:
            fail(str(exc))
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"broker: {message}", err=True)
    sys.exit(code)


def read_config(path: Path):
    from broker.config import load_config

    return load_config(path)  # a ConfigError names file, field and reason: BrokerGroup prints it as is


def known_portal(config, portal: str) -> str:
    if portal not in config.portals:
        raise click.ClickException(f"unknown portal {portal!r} (known: {', '.join(sorted(config.portals))})")
    return portal


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML config file.",
)
