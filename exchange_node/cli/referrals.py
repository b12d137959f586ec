"""``exchange-node referral ...``: consented referrals, sent and received."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
