"""``exchange-node directory sync``: poll trusted peers' capacity documents now."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
