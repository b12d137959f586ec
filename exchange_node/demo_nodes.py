"""The demo's nodes: real ``exchange-node serve`` processes on loopback, and commands run on them.

Every node and every command is a child process of the interpreter running the demo
(``python -m exchange_node.cli``), so the demo behaves as an administrator's terminal
would, whatever the install. A node's output goes to a log file in its home folder.
This module starts, waits for, commands and stops nodes; it narrates nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Settings of every child process, suited to a demo: a worker round every second, the
#: outbox looked at five times a second, and short timeouts. Inherited EXCHANGE_* go.
DEMO_ENVIRONMENT: Mapping[str, str] = {
    "EXCHANGE_WORKER_INTERVAL_SECONDS": "1",
    "EXCHANGE_DELIVERY_POLL_SECONDS": "0.2",
    "EXCHANGE_HTTP_TIMEOUT_SECONDS": "5",
    "EXCHANGE_LOG_LEVEL": "INFO",
}
STARTUP_SECONDS = 20.0
COMMAND_SECONDS = 30.0
STOP_SECONDS = 5.0
#: Lines of a node's log shown when a step fails.
LOG_TAIL_LINES = 25
#: Demo passwords: four groups of four letters and digits that cannot be mistaken for
#: one another (no 0/o, 1/l/i), easy to type on a phone; about 80 bits in all.
UNAMBIGUOUS_CHARACTERS = "abcdefghjkmnpqrstuvwxyz23456789"


class DemoError(Exception):
    """A step of the demo went wrong: what, and the command's error output if one failed."""

    def __init__(self, message: str, *, node: DemoNode | None = None, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.output = output


def environment() -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    return inherited | dict(DEMO_ENVIRONMENT)


def free_ports(count: int) -> list[int]:
    """``count`` different ports nobody listens on now (the kernel's choices for port 0)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def new_password() -> str:
    """A random password for a demo account, such as ``k7mq-x2rd-9tfa-hw4c``."""
    groups = ("".join(secrets.choice(UNAMBIGUOUS_CHARACTERS) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


@dataclass(frozen=True)
class Account:
    """Someone who signs in to a node's web app: address, role and password."""

    email: str
    role: str
    password: str = field(repr=False)


def cli(*arguments: str) -> list[str]:
    """The command line running ``exchange-node ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-m", "exchange_node.cli", *arguments]


@dataclass
class DemoNode:
    """One organization's node: who it is, where it lives, and once started, its process."""

    key: str
    name: str
    kind: str
    home: Path
    port: int
    thumbprint: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "serve.log"

    def run(self, *arguments: str, stdin: str | None = None) -> str:
        """Run ``exchange-node ARGUMENTS --home HOME`` (fed ``stdin``); its standard output.

        Raises:
            DemoError: the command failed or took longer than ``COMMAND_SECONDS``.
        """
        command = cli(*arguments, "--home", str(self.home))
        try:
            done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
                command,
                input=stdin,
                capture_output=True,
                text=True,
                env=environment(),
                timeout=COMMAND_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise DemoError(
                f"'exchange-node {arguments[0]}' on {self.name} took over {COMMAND_SECONDS:.0f} s",
                node=self,
            ) from e
        if done.returncode != 0:
            words = " ".join(arguments[:2])
            raise DemoError(
                f"'exchange-node {words}' on {self.name} exited with {done.returncode}",
                node=self,
                output=(done.stderr or done.stdout).strip(),
            )
        return done.stdout

    def json(self, *arguments: str) -> Any:
        """Run a command with ``--json``; its parsed output."""
        printed = self.run(*arguments, "--json")
        try:
            return json.loads(printed)
        except ValueError as e:
            words = " ".join(arguments[:2])
            raise DemoError(
                f"'exchange-node {words} --json' on {self.name} printed no JSON",
                node=self,
                output=printed[:2000],
            ) from e

    def init_arguments(self) -> tuple[str, ...]:
        """``init`` for this node: its organization's name and kind, and its URL."""
        return ("init", "--name", self.name, "--kind", self.kind, "--url", self.url)

    def add_accounts(self, *wanted: tuple[str, str]) -> list[Account]:
        """Add web app users ((e-mail, role), one after the other), each with a new random
        password given on standard input; the accounts.

        Raises:
            DemoError: ``user add`` failed.
        """
        accounts = [Account(email, role, new_password()) for email, role in wanted]
        for account in accounts:
            self.run(*account_arguments(account.email, account.role), stdin=account.password + "\n")
        return accounts

    def start(self, *, detached: bool = False) -> None:
        """Serve the node in the background; ``detached`` ones outlive the demo (``--keep``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                cli("serve", "--home", str(self.home), "--port", str(self.port)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment(),
                start_new_session=detached,
            )

    def wait_until_ready(self) -> None:
        """Wait until ``/readyz`` answers 200 (database and keys loaded).

        Raises:
            DemoError: the process exited, or did not get ready in ``STARTUP_SECONDS``.
        """
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise DemoError(f"{self.name}'s server exited with status {code}", node=self)
            if answers(f"{self.url}/readyz"):
                return
            time.sleep(0.1)
        raise DemoError(f"{self.name} did not get ready in {STARTUP_SECONDS:.0f} s", node=self)

    def stop(self) -> None:
        """Stop the server: terminate, then kill after ``STOP_SECONDS``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def thumbprint_in(node: DemoNode, init_output: str) -> str:
    """The thumbprint that ``init`` printed.

    Raises:
        DemoError: it printed none.
    """
    prefix = "Signing key thumbprint: "
    for line in init_output.splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise DemoError(f"'init' printed no thumbprint for {node.name}", node=node, output=init_output)


def account_arguments(email: str, role: str) -> tuple[str, ...]:
    """``user add`` for ``email`` with ``role``, the password read from standard input."""
    return ("user", "add", email, "--role", role, "--password-stdin")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within a second (no proxy in between)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for(check: Callable[[], T | None], seconds: float, what: str, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something other than ``None``; that value.

    Raises:
        DemoError: nothing came within ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(interval)


def initialize_side_by_side(*nodes: DemoNode) -> None:
    """``init`` the nodes at the same time and note each one's thumbprint.

    Raises:
        DemoError: an ``init`` failed or printed no thumbprint.
    """
    printed = run_side_by_side(*((node, node.init_arguments()) for node in nodes))
    for node, output in zip(nodes, printed, strict=True):
        node.thumbprint = thumbprint_in(node, output)


def add_accounts_side_by_side(
    *wanted: tuple[DemoNode, Sequence[tuple[str, str]]],
) -> list[list[Account]]:
    """Add each node's (e-mail, role) accounts, the nodes at the same time; them, in order.

    Raises:
        DemoError: the first ``user add`` that failed.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        futures = [pool.submit(node.add_accounts, *pairs) for node, pairs in wanted]
        return [future.result() for future in futures]


def run_side_by_side(*calls: tuple[DemoNode, tuple[str, ...]]) -> list[str]:
    """Run commands on different nodes at the same time; their outputs, in order.

    Raises:
        DemoError: the first of the commands that failed.
    """
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(node.run, *arguments) for node, arguments in calls]
        return [future.result() for future in futures]
