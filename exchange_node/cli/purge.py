"""``exchange-node purge``: the retention purge of personal data, now.

The worker runs the same purge every round; this command is for an administrator who
wants it done (or counted, with ``--dry-run``) at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from exchange_node.cli.common import home_option, json_option, open_node, timestamp
from exchange_node.services import retention


@click.command()
@home_option
@click.option("--dry-run", is_flag=True, help="Count the referrals due; purge nothing.")
@json_option
def purge(home: Path | None, dry_run: bool, as_json: bool) -> None:
    """Purge the personal data of referrals closed (or whose consent expired) past retention.

    Keeps each referral's tombstone: identifiers, codes and the status history.
    """
    node = open_node(home)
    now = node.now()
    if dry_run:
        with node.database.session() as session:
            count = retention.count_expired(node, session, now=now)
    else:
        count = retention.purge_expired(node, now=now, actor="cli")
    days, cutoff = node.settings.retention_days, retention.retention_cutoff(node, now)
    if as_json:
        counts = {"purged": 0, "would_purge": count} if dry_run else {"purged": count}
        result = {"dry_run": dry_run, **counts, "retention_days": days, "cutoff": cutoff}
        click.echo(json.dumps(result, indent=2))
        return
    verb = "would purge" if dry_run else "purged"
    noun = "referral" if count == 1 else "referrals"
    click.echo(
        f"{verb} the personal data of {count} {noun} "
        f"closed or expired {days} days or more ago (by {timestamp(cutoff)})"
    )


COMMANDS: list[click.Command] = [purge]
