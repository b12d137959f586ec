"""What the commands share: the ``--home`` and ``--json`` options, opening the node, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from exchange_node.node import Node
from exchange_node.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def home_option(command: F) -> F:
    """``--home DIR`` on a command (default: ``EXCHANGE_HOME``, then ~/.exchange-node)."""
    return click.option(
        "--home",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="EXCHANGE_HOME",
        help="The node's home folder (default: $EXCHANGE_HOME or ~/.exchange-node).",
    )(command)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def open_node(home: Path | None) -> Node:
    """The node in ``home``; its database connections close when the command ends."""
    node = Node.open(load_settings(home))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(node.database.dispose)
    return node


def timestamp(value: int | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def emit(rows: Sequence[Mapping[str, Any]], columns: Iterable[str], as_json: bool) -> None:
    """Print rows as JSON (a list) or as an aligned table of ``columns``."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2))
        return
    names = list(columns)
    if not rows:
        click.echo("(none)")
        return
    cells = [["-" if row.get(name) is None else str(row[name]) for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
    click.echo(
        "  ".join(name.upper().ljust(width) for name, width in zip(names, widths, strict=True))
    )
    for line in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def emit_one(row: Mapping[str, Any], as_json: bool) -> None:
    """Print one record as JSON or as ``name: value`` lines."""
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    width = max(len(name) for name in row)
    for name, value in row.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
        click.echo(f"{name.ljust(width)}  {shown}")
