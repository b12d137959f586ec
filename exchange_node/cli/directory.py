"""``exchange-node directory ...``: the services of trusted peers, synced and searched locally."""

from __future__ import annotations

import click


@click.group()
def directory() -> None:
    """Trusted peers' services: sync their capacity documents, search them."""


def _register() -> None:
    from exchange_node.cli import directory_search, directory_sync

    for module in (directory_sync, directory_search):
        for command in module.COMMANDS:
            directory.add_command(command)


_register()
COMMANDS = [directory]
