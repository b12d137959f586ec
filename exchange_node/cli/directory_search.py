"""``exchange-node directory search``: search trusted peers' services held locally."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
