"""``exchange-node purge``: the retention purge of personal data, now."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
