"""``exchange-node demo``: three nodes on loopback carry one referral from consent to deletion.

A youth network, a clinic and a school each get a node in a temporary home folder,
served on a free port of 127.0.0.1. The steps (:mod:`exchange_node.demo_steps`) add
web app accounts, peer them, publish capacity, search, refer, close the loop, withdraw
consent and verify the audit logs, telling a newcomer what happens. Afterwards the nodes
are stopped and their homes deleted, or left running with ``--keep``, which prints each
node's sign-in page with its accounts' random passwords. Whatever happens, no node
started here is left running unless the demo succeeded with ``keep``.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from exchange_node.demo_nodes import DemoError, DemoNode, free_ports
from exchange_node.demo_steps import STEPS, Demo, Narrator

#: (key, organization name, kind) of the three nodes, in the order they are created.
ORGANIZATIONS = (
    ("community", "Rainbow Youth Network", "community-network"),
    ("clinic", "Riverside Clinic", "clinic"),
    ("school", "Northside School", "school"),
)
#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED = 130


def run_demo(
    *,
    base_dir: Path | None,
    keep: bool,
    echo: Callable[[str], None],
    echo_error: Callable[[str], None],
) -> int:
    """Run the whole demo; the exit status (0 done, 1 a step failed, 130 interrupted)."""
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="exchange-demo-", dir=base_dir))
    ports = free_ports(len(ORGANIZATIONS))
    nodes = [
        DemoNode(key, name, kind, folder / key, port)
        for (key, name, kind), port in zip(ORGANIZATIONS, ports, strict=True)
    ]
    demo = Demo(nodes[0], nodes[1], nodes[2], say=Narrator(echo), detached=keep)
    _introduce(demo, folder)
    total = len(STEPS) + 1
    number, title, finished = 0, "preparing", False
    try:
        for number, (title, step) in enumerate(STEPS, 1):
            demo.say.title(f"Step {number} of {total}: {title}")
            step(demo)
        demo.say.title(f"Step {total} of {total}: {'Leave' if keep else 'Stop'} the nodes")
        finished = True
    except DemoError as e:
        _report_failure(demo, f"Step {number} ({title})", e, echo_error)
        return 1
    except KeyboardInterrupt:
        echo_error(f"\nInterrupted during step {number} ({title}); stopping the nodes.")
        return INTERRUPTED
    finally:
        if not (finished and keep):
            _stop(demo)
            if keep:
                echo_error(f"The nodes are stopped; their homes and logs are kept in {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
    if keep:
        _tell_how_to_sign_in(demo)
        _tell_how_to_stop(demo, folder)
    else:
        demo.say.explain(f"All three nodes are stopped and their homes in {folder} deleted.")
    demo.say.explain(f"The whole loop took {time.monotonic() - started:.0f} s.")
    return 0


def _introduce(demo: Demo, folder: Path) -> None:
    demo.say.title("exchange-node demo")
    demo.say.explain(
        """Three organizations (a youth network, a clinic and a school) each run a node on
        this computer. A volunteer refers a young person, Sam, to the clinic with Sam's
        consent; the clinic takes care of Sam and reports back; then Sam withdraws consent
        and the clinic deletes Sam's details. The commands shown are the ones an
        administrator types (the demo adds --home for each node)."""
    )
    demo.say.fact("Node homes", folder)


def _report_failure(
    demo: Demo, where: str, error: DemoError, echo_error: Callable[[str], None]
) -> None:
    echo_error("")
    echo_error(f"{where} failed: {error.message}")
    if error.output:
        echo_error("  The command said:")
        for line in error.output.splitlines():
            echo_error(f"    | {line}")
    for node in [error.node] if error.node is not None else demo.nodes:
        echo_error(f"  The last lines of {node.name}'s log ({node.log}):")
        for line in node.log_tail().splitlines():
            echo_error(f"    | {line}")


def _stop(demo: Demo) -> None:
    """Stop every node that was started (one that will not stop is killed)."""
    for node in demo.nodes:
        node.stop()


def _tell_how_to_sign_in(demo: Demo) -> None:
    """Each node's sign-in page with its accounts and their passwords."""
    demo.say.explain(
        """Open a node's web app in a browser and sign in (the language switch is at the top
        of every page). To carry a referral through its loop, sign in as the volunteer at the
        youth network and, in another tab, as intake at the clinic: each node keeps its own
        sign-in, so one browser can be signed in to all three."""
    )
    for node in demo.nodes:
        demo.say.echo(f"    {node.name:<28} {node.url}/login")
        for account in demo.accounts.get(node.key, []):
            demo.say.echo(
                f"      {account.email:<26} {account.role:<6} password: {account.password}"
            )


def _tell_how_to_stop(demo: Demo, folder: Path) -> None:
    demo.say.explain("The nodes keep running:")
    for node in demo.nodes:
        pid = node.process.pid if node.process is not None else "-"
        demo.say.fact(node.name, f"{node.url}  pid {pid}  home {node.home}")
    demo.say.explain("Look around with any exchange-node command, for example:")
    demo.say.echo(
        f"    EXCHANGE_HOME={shlex.quote(str(demo.community.home))} exchange-node referral list"
    )
    pids = " ".join(str(node.process.pid) for node in demo.nodes if node.process is not None)
    demo.say.explain("Stop them and delete their homes with:")
    demo.say.echo(f"    kill {pids} && rm -rf {shlex.quote(str(folder))}")
