"""``exchange-node service ...`` and ``exchange-node capacity ...``: this node's own services."""

from __future__ import annotations

import click


@click.group()
def service() -> None:
    """This node's services (Open Referral HSDS 3.1 records)."""


@click.group()
def capacity() -> None:
    """Capacity of this node's services, as published to trusted peers."""


COMMANDS = [service, capacity]
