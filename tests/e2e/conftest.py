"""Fixtures for end-to-end tests: real ``exchange-node`` processes serving on 127.0.0.1.

Every command runs the installed ``exchange-node`` console script in a child
process, exactly as an administrator would. Nodes run with a two-second key
overlap and a worker that refreshes peers every second, so a key rotation is
followed within a test. Server processes are always stopped at teardown.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

EXECUTABLE = Path(sys.executable).parent / "exchange-node"
#: Settings of every child process; the inherited EXCHANGE_* variables are dropped.
NODE_ENVIRONMENT = {
    "EXCHANGE_KEY_OVERLAP_SECONDS": "2",
    "EXCHANGE_WORKER_INTERVAL_SECONDS": "1",
    "EXCHANGE_PEER_REFRESH_SECONDS": "1",
    "EXCHANGE_HTTP_TIMEOUT_SECONDS": "5",
}
STARTUP_SECONDS = 15.0
COMMAND_SECONDS = 30.0


def environment() -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    return inherited | NODE_ENVIRONMENT


def free_ports(count: int) -> list[int]:
    """``count`` different ports nobody listens on now (the kernel's choices for port 0)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def run_commands(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run ``exchange-node`` commands side by side; their results, in order."""
    children = [
        subprocess.Popen(  # noqa: S603
            [str(EXECUTABLE), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        for command in commands
    ]
    results = []
    try:
        for command, child in zip(commands, children, strict=True):
            stdout, stderr = child.communicate(timeout=COMMAND_SECONDS)
            results.append(subprocess.CompletedProcess(command, child.returncode, stdout, stderr))
    finally:
        for child in children:
            if child.poll() is None:  # only after a timeout or an interrupt
                child.kill()
                child.communicate()
    return results


@dataclass
class NodeProcess:
    """One node: its home folder, its URL, and once served, its server process."""

    name: str
    home: Path
    port: int
    thumbprint: str = ""
    server: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home.parent / f"{self.name}-serve.log"

    def args(self, *command: str) -> list[str]:
        """``command`` for this node (``--home`` may follow the arguments)."""
        return [*command, "--home", str(self.home)]

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return run_commands(self.args(*command))[0]

    def ok(self, *command: str) -> str:
        """Run a command that must succeed; its standard output."""
        return succeeded(self.run(*command))

    def json(self, *command: str) -> Any:
        return json.loads(self.ok(*command, "--json"))

    def serve(self) -> None:
        with self.log.open("wb") as log:
            self.server = subprocess.Popen(  # noqa: S603
                [str(EXECUTABLE), "serve", "--home", str(self.home), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment(),
            )

    def wait_until_healthy(self, http: requests.Session) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.server is not None
            if self.server.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.server.returncode}:\n{self.logged()}")
            try:
                if http.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} did not answer /healthz in {STARTUP_SECONDS} s:\n{self.logged()}")

    def stop(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=5)

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} -> {result.returncode}:\n{result.stderr}"
    return result.stdout


def thumbprint_in(init_output: str) -> str:
    found = re.search(r"^Signing key thumbprint: (\S+)$", init_output, re.MULTILINE)
    assert found, init_output
    return found.group(1)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A client that ignores proxy settings from the environment."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def two_nodes(tmp_path: Path, http: requests.Session) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """A community network and a clinic, created with ``init`` and served on free ports."""
    ports = free_ports(2)
    nodes = [
        NodeProcess("community", tmp_path / "community", ports[0]),
        NodeProcess("clinic", tmp_path / "clinic", ports[1]),
    ]
    kinds = {"community": "community-network", "clinic": "clinic"}
    created = run_commands(
        *(
            node.args(
                "init", "--name", node.name.title(), "--kind", kinds[node.name], "--url", node.url
            )
            for node in nodes
        )
    )
    for node, result in zip(nodes, created, strict=True):
        node.thumbprint = thumbprint_in(succeeded(result))
    try:
        for node in nodes:
            node.serve()
        for node in nodes:
            node.wait_until_healthy(http)
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
            print(f"--- {node.name} server log ---\n{node.logged()}")  # shown on failure


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class TunedNode(NodeProcess):
    """A node whose every command gets extra ``EXCHANGE_*`` settings (``server_settings``
    too for ``serve``), and whose public URL (its entity identifier) may be another port's,
    such as a proxy's in front of it.

    ``port`` is where ``serve`` listens. Its server log is appended to across restarts.
    """

    settings: dict[str, str] = field(default_factory=dict)
    server_settings: dict[str, str] = field(default_factory=dict)
    public_url: str = ""

    @property
    def url(self) -> str:
        return self.public_url or f"http://127.0.0.1:{self.port}"

    def start(self, *command: str) -> subprocess.Popen[str]:
        """Start ``command`` for this node; :func:`finish` waits for it."""
        return subprocess.Popen(  # noqa: S603
            [str(EXECUTABLE), *self.args(*command)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment() | self.settings,
        )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return finish(self.start(*command))

    def serve(self) -> None:
        with self.log.open("ab") as log:
            self.server = subprocess.Popen(  # noqa: S603
                [str(EXECUTABLE), "serve", "--home", str(self.home), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment() | self.settings | self.server_settings,
            )

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no cleanup, whatever it was doing."""
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(timeout=5)

    @property
    def serving(self) -> bool:
        return self.server is not None and self.server.poll() is None


def finish(child: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a command started by :meth:`TunedNode.start`; its result."""
    try:
        stdout, stderr = child.communicate(timeout=COMMAND_SECONDS)
    finally:
        if child.poll() is None:  # only after a timeout or an interrupt
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
