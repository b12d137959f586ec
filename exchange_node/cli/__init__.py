"""The ``exchange-node`` command line.

Every command takes ``--home DIR`` (or ``EXCHANGE_HOME``); every listing takes
``--json``. A failure prints one line saying what is wrong and what to do, and
exits with status 1, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from exchange_node import __version__
from exchange_node.errors import ExchangeError
from exchange_node.protocol.errors import ProtocolError

#: Each command and the module that defines it (in its ``COMMANDS``). A module is imported
#: only when its command runs, so a command does not pay for importing every other one
#: (the web app, search, the demo): ``tests/test_cli.py`` checks this table is complete.
COMMAND_MODULES: dict[str, str] = {
    "init": "node",
    "migrate": "node",
    "serve": "node",
    "worker": "node",
    "peer": "peers",
    "keys": "keys",
    "user": "users",
    "client": "clients",
    "service": "services",
    "capacity": "capacity",
    "directory": "directory",
    "referral": "referrals",
    "purge": "purge",
    "audit": "audit",
    "openapi": "openapi",
    "conformance": "conformance",
    "demo": "demo",
}


class Commands(click.Group):
    """Loads each command on first use, and turns the node's errors into one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"exchange_node.cli.{module_name}")
        commands: list[click.Command] = module.COMMANDS
        return next(command for command in commands if command.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ExchangeError, ProtocolError) as e:
            raise click.ClickException(f"{e.detail} [{e.code}]") from e


@click.group(cls=Commands)
@click.version_option(__version__, prog_name="exchange-node")
def main() -> None:
    """exchange-node: a federated partnership and referral exchange."""
