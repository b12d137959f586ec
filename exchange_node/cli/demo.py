"""``exchange-node demo``: three nodes on loopback carrying a referral through its loop."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
