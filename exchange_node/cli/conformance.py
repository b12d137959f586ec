"""``exchange-node conformance``: check this implementation against the protocol's vectors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from exchange_node.conformance import check_vectors


@click.command()
@click.option(
    "--vectors",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("protocol/vectors"),
    show_default=True,
    help="Folder holding keys.json and the vector files.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per vector.")
def conformance(folder: Path, as_json: bool) -> None:
    """Check this implementation against the protocol's conformance vectors."""
    if not (folder / "keys.json").is_file():
        raise click.ClickException(
            f"no conformance vectors in {folder}: run from a checkout of exchange-node "
            "or pass --vectors PATH/TO/protocol/vectors"
        )
    try:
        results = check_vectors(folder)
    except (OSError, ValueError, KeyError) as e:
        raise click.ClickException(f"cannot read the vectors in {folder}: {e}") from e
    for result in results:
        if as_json:
            click.echo(json.dumps(result.__dict__ | {"passed": result.passed}))
        elif not result.passed:
            click.echo(
                f"FAIL {result.file}:{result.name}: expected {result.expected}, got {result.actual}"
            )
    failed = sum(not result.passed for result in results)
    if not as_json:
        click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)


COMMANDS = [conformance]
