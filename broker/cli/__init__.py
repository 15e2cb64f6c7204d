"""The `broker` command: serve, demo, and the admin tools (check, fingerprint, metadata, keygen, simulate,
provision, review). Errors end the command with one line on stderr, `broker: <what>`, and a non-zero exit status.

One module per group of commands: `run` (demo, serve, worker), `tools` (check, simulate), `portal` (fingerprint,
metadata, keygen), `provision`; the access review's command lives in broker.review.command.
"""

from __future__ import annotations

import click

from broker.cli.base import BrokerGroup
from broker.cli.portal import fingerprint, keygen, metadata
from broker.cli.provision import provision
from broker.cli.run import demo, serve, worker
from broker.cli.tools import check, simulate
from broker.review.command import review


@click.group(cls=BrokerGroup)
def main() -> None:
    """LearnUpon SAML broker: SP-initiated login in, signed IdP-initiated assertion out."""


for _command in (demo, serve, worker, check, fingerprint, metadata, keygen, simulate, provision, review):
    main.add_command(_command)
