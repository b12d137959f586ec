"""The ``exchange-node`` command line.

Every command takes ``--home DIR`` (or ``EXCHANGE_HOME``); every listing takes
``--json``. A failure prints one line saying what is wrong and what to do, and
exits with status 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from exchange_node import __version__
from exchange_node.errors import ExchangeError
from exchange_node.protocol.errors import ProtocolError


class Commands(click.Group):
    """A group whose commands turn the node's errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ExchangeError, ProtocolError) as e:
            raise click.ClickException(f"{e.detail} [{e.code}]") from e


@click.group(cls=Commands)
@click.version_option(__version__, prog_name="exchange-node")
def main() -> None:
    """exchange-node: a federated partnership and referral exchange."""


def _register() -> None:
    from exchange_node.cli import (
        audit,
        capacity,
        clients,
        conformance,
        demo,
        directory,
        keys,
        node,
        openapi,
        peers,
        purge,
        referrals,
        services,
        users,
    )

    for module in (
        node,
        peers,
        keys,
        users,
        clients,
        services,
        capacity,
        directory,
        openapi,
        conformance,
        audit,
        referrals,
        purge,
        demo,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
