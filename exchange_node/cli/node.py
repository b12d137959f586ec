"""``init``, ``migrate``, ``serve`` and ``worker``: creating and running a node."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from exchange_node import worker
from exchange_node.cli.common import home_option, open_node
from exchange_node.db import Database
from exchange_node.db.migrate import upgrade
from exchange_node.errors import ConfigurationError, NotInitializedError
from exchange_node.node import system_clock
from exchange_node.protocol.wire import ORGANIZATION_KINDS
from exchange_node.services import delivery
from exchange_node.services.setup import initialize_node
from exchange_node.settings import load_settings


@click.command()
@home_option
@click.option("--name", required=True, help="The organization's public name.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(ORGANIZATION_KINDS),
    help="What kind of organization.",
)
@click.option(
    "--url", required=True, help="The node's public base URL, e.g. https://node.example.org"
)
@click.option(
    "--language",
    "languages",
    multiple=True,
    default=("en",),
    show_default=True,
    help="A language the organization works in (BCP 47); repeat for several.",
)
@click.option(
    "--exist-ok",
    is_flag=True,
    help="If the home already holds this node (same URL), show it and succeed.",
)
def init(
    home: Path | None, name: str, kind: str, url: str, languages: tuple[str, ...], exist_ok: bool
) -> None:
    """Create a node: home folder, settings, database and keys."""
    url = url.strip().rstrip("/")
    if exist_ok and load_settings(home).is_initialized:
        _confirm_existing(home, url)
        return
    settings = load_settings(home, name=name, kind=kind, url=url, languages=languages)
    ring = initialize_node(settings, system_clock())
    click.echo(f"Created the node {settings.url} in {settings.home}")
    click.echo(f"Signing key thumbprint: {ring.signing_key.kid}")
    click.echo("Give both to the administrators of the nodes you will peer with.")
    if os.environ.get("EXCHANGE_DATABASE_URL"):
        click.echo(
            "The database URL came from EXCHANGE_DATABASE_URL and is not stored in node.toml:"
        )
        click.echo("set it for every command (serve, worker, peer ...).")
    if settings.key_passphrase is None:
        click.echo(
            "Note: keys are stored unencrypted (mode 0600); "
            "set EXCHANGE_KEY_PASSPHRASE to encrypt them."
        )


def _confirm_existing(home: Path | None, url: str) -> None:
    """``init --exist-ok`` on a home that holds a node: the same node is fine, another is not."""
    node = open_node(home)
    if node.settings.url != url:
        raise ConfigurationError(
            f"{node.settings.home} holds the node {node.settings.url}, not {url}; "
            "choose another --home"
        )
    with node.database.session() as session:
        kid = node.ring(session).signing_key.kid
    click.echo(f"The node {node.settings.url} already exists in {node.settings.home}")
    click.echo(f"Signing key thumbprint: {kid}")


@click.command()
@home_option
def migrate(home: Path | None) -> None:
    """Bring the database to the schema this version needs."""
    settings = load_settings(home)
    if not settings.is_initialized:
        raise NotInitializedError(
            f"no node in {settings.home}: run 'exchange-node init' (or pass --home)"
        )
    database = Database(settings.database_url)
    try:
        upgrade(database)
    finally:
        database.dispose()
    click.echo("The database is up to date.")


@click.command()
@home_option
@click.option("--host", help="Address to listen on (default: EXCHANGE_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: EXCHANGE_PORT or 8040).")
@click.option("--threads", type=int, default=8, show_default=True, help="Request threads.")
@click.option(
    "--no-worker", is_flag=True, help="Do not run the worker here (run 'exchange-node worker')."
)
def serve(
    home: Path | None, host: str | None, port: int | None, threads: int, no_worker: bool
) -> None:
    """Run the node under waitress, with its worker in the same process."""
    import waitress

    from exchange_node.web import create_app

    node = open_node(home)
    logging.basicConfig(
        level=node.settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(node=node)
    background = None if no_worker else worker.start_in_background(node)
    host, port = host or node.settings.host, port or node.settings.port
    click.echo(f"Serving {node.settings.url} on http://{host}:{port}")
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="exchange-node")
    finally:
        if background is not None:
            background.stop(timeout=node.settings.http_timeout_seconds)


@click.command("worker")
@home_option
@click.option("--once", is_flag=True, help="Run one round, deliver what is due, and exit.")
def run_worker(home: Path | None, once: bool) -> None:
    """Run the background worker on its own: the outbox and upkeep rounds.

    Several workers may share a PostgreSQL database (each outbox row is claimed by one).
    """
    node = open_node(home)
    logging.basicConfig(
        level=node.settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if once:
        report = worker.run_round(node)
        click.echo(
            f"{report.refreshed} peers refreshed, {report.failed} failed; capacity: "
            f"{report.synced} updated, {report.unchanged} unchanged, {report.sync_failed} failed"
        )
        sent = delivery.deliver_until_idle(node)
        click.echo(
            f"outbox: {sent.delivered} delivered, {sent.retried} to retry, {sent.failed} failed; "
            f"{report.purged} referrals purged past retention"
        )
        return
    background = worker.start_in_background(node, upkeep=False)
    stop = background.stop_event
    try:
        worker.run_forever(node, stop)
    except KeyboardInterrupt:
        background.stop(timeout=node.settings.http_timeout_seconds)


COMMANDS = [init, migrate, serve, run_worker]
