"""``exchange-node demo``: three nodes on loopback carrying a referral through its loop."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from exchange_node.demo import run_demo


@click.command()
@click.option(
    "--keep", is_flag=True, help="Leave the nodes running afterwards and say how to stop them."
)
@click.option(
    "--base-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Make the nodes' temporary homes in this folder (default: the system's temp folder).",
)
def demo(keep: bool, base_dir: Path | None) -> None:
    """Run three nodes on this computer and send one consented referral around the loop."""
    if base_dir is not None:
        base_dir.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        status = run_demo(
            base_dir=base_dir,
            keep=keep,
            echo=click.echo,
            echo_error=lambda line: click.echo(line, err=True),
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status:
        raise SystemExit(status)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A ``kill`` stops the demo like Ctrl-C, so its nodes are stopped too."""
    raise KeyboardInterrupt


COMMANDS: list[click.Command] = [demo]
