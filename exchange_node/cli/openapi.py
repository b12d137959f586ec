"""``exchange-node openapi``: write, print or check the OpenAPI document of the HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from exchange_node.openapi import build_openapi, render_openapi

DEFAULT_PATH = Path("schemas/openapi.json")


@click.command()
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the document to PATH (default: print it).",
)
@click.option(
    "--check",
    is_flag=True,
    help=f"Write nothing; exit with status 1 if PATH (default {DEFAULT_PATH}) is out of date.",
)
def openapi(output: Path | None, check: bool) -> None:
    """The OpenAPI 3.1 document of this node's HTTP API (schemas/openapi.json)."""
    text = render_openapi(build_openapi())
    if check:
        check_document(output or DEFAULT_PATH, text)
    elif output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_bytes(text.encode("utf-8"))
        except OSError as e:
            raise click.ClickException(f"cannot write {output}: {e.strerror}") from e


def check_document(path: Path, text: str) -> None:
    """Exit with status 1 and one line unless ``path`` holds exactly ``text``."""
    try:
        current: str | None = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        state = "is out of date" if current is not None else "cannot be read"
        raise click.ClickException(f"{path} {state}: run 'exchange-node openapi --output {path}'")


COMMANDS = [openapi]
