"""``exchange-node demo``: the whole referral loop on three real nodes, and its cleanup.

The demo runs as an administrator would run it (a child process); its output must
show each key fact of the loop, and afterwards no node may be left listening and no
home folder left behind. With ``--keep`` the nodes keep answering until stopped with
the command it prints. A failing or interrupted step stops the nodes too (run in this
process, with a step that fails on purpose).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from exchange_node import demo as demo_module
from exchange_node.demo_nodes import DemoError
from exchange_node.demo_steps import Demo, init_nodes
from tests.e2e.conftest import environment

#: The demo takes well under a minute on an idle machine; every command it runs costs about a
#: second of CPU to start, so on a machine busy with other tests it takes several times longer.
DEMO_SECONDS = 300.0
NAMES = ("Rainbow Youth Network", "Riverside Clinic", "Northside School")


def run_demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``exchange-node demo ARGUMENTS``; on a timeout it gets SIGTERM first, to stop its nodes."""
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "exchange_node.cli", "demo", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        stdout, stderr = child.communicate(timeout=DEMO_SECONDS)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
        stop_kept_nodes(stdout)  # a --keep demo that ended just too late leaves them running
        pytest.fail(f"the demo took over {DEMO_SECONDS} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def kept_nodes(output: str) -> list[tuple[str, int]]:
    """(url, pid) of each node a ``--keep`` demo left running."""
    found = re.findall(r"(http://127\.0\.0\.1:\d+)\s+pid (\d+)", output)
    return [(url, int(pid)) for url, pid in found]


def stop_kept_nodes(output: str) -> None:
    for _, pid in kept_nodes(output):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def listening(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def served_urls(output: str) -> list[str]:
    return re.findall(r"serving (http://127\.0\.0\.1:\d+)$", output, re.MULTILINE)


def fact(output: str, label: str) -> str:
    """The value printed after ``label:`` (the first such line)."""
    found = re.search(rf"^\s+{re.escape(label)}:\s+(.+)$", output, re.MULTILINE)
    assert found, f"no {label!r} in:\n{output}"
    return found.group(1).strip()


def test_the_demo_shows_the_whole_loop_and_leaves_nothing_running(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_demo("--base-dir", str(tmp_path))
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    print(f"the demo took {time.monotonic() - started:.0f} s")  # shown with -s or on failure

    urls = served_urls(output)
    assert len(urls) == 3, output
    for name in NAMES:
        assert re.search(rf"{name} thumbprint:\s+[\w-]{{43}}$", output, re.MULTILINE), name
    for name in NAMES[1:]:
        assert re.search(rf"^\s+{name}:\s+trusted \(http", output, re.MULTILINE), name
    assert "Youth sexual health drop-in: capacity, wait 2 days, accepting" in output
    assert "verified today" in output

    code = fact(output, "Consent receipt code")
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    assert f"Consent receipt {code}" in output  # the receipt's text
    assert fact(output, "Delivery").startswith("delivered")
    seen = re.findall(r"Youth network sees:\s+(\S+) \(arrived", output)
    assert seen == ["accepted", "in-progress", "completed"]
    assert "Riverside Clinic deleted Sam's data at 20" in fact(output, "Deletion receipt")
    assert "Checked: Sam's name, phone number and pronouns are gone" in output
    for name in NAMES:
        assert re.search(rf"^\s+{name}:\s+audit log intact: \d+ entries", output, re.MULTILINE)

    assert "Traceback" not in output + result.stderr
    assert not [url for url in urls if listening(url)], "a node is still listening"
    assert list(tmp_path.iterdir()) == [], "the demo left its homes behind"


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``demo --keep``: its output and (url, pid) of each node; stopped at teardown."""
    result = run_demo("--keep", "--base-dir", str(tmp_path))
    try:
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        yield result.stdout, kept_nodes(result.stdout)
    finally:
        stop_kept_nodes(result.stdout)


def test_keep_leaves_the_nodes_running_and_says_how_to_stop_them(
    kept: tuple[str, list[tuple[str, int]]], tmp_path: Path
) -> None:
    output, nodes = kept
    assert len(nodes) == 3, output
    with requests.Session() as http:
        http.trust_env = False
        for url, _ in nodes:
            assert http.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
    [folder] = tmp_path.iterdir()
    stop = f"kill {' '.join(str(pid) for _, pid in nodes)} && rm -rf {folder}"
    assert stop in output
    assert f"EXCHANGE_HOME={folder / 'community'} exchange-node referral list" in output

    subprocess.run(stop, shell=True, check=True)  # noqa: S602 (the command the demo printed)
    deadline = time.monotonic() + 10
    while any(listening(url) for url, _ in nodes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [url for url, _ in nodes if listening(url)]
    assert not folder.exists()


def fail_on_purpose(demo: Demo) -> None:
    raise DemoError("on purpose", node=demo.clinic, output="Error: the command said this")


def interrupt(demo: Demo) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("step", "keep", "status", "said"),
    [
        (fail_on_purpose, False, 1, "Step 2 (Break) failed: on purpose"),
        (interrupt, True, demo_module.INTERRUPTED, "Interrupted during step 2 (Break)"),
    ],
)
def test_a_failed_or_interrupted_step_stops_every_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: Callable[[Demo], None],
    keep: bool,
    status: int,
    said: str,
) -> None:
    monkeypatch.setattr(demo_module, "STEPS", (("Create", init_nodes), ("Break", step)))
    printed: list[str] = []
    errors: list[str] = []
    answer = demo_module.run_demo(
        base_dir=tmp_path, keep=keep, echo=printed.append, echo_error=errors.append
    )
    output, error_output = "\n".join(printed), "\n".join(errors)
    assert answer == status
    assert said in error_output
    urls = served_urls(output)
    assert len(urls) == 3
    assert not [url for url in urls if listening(url)]
    if status == 1:
        assert "    | Error: the command said this" in error_output
        assert "The last lines of Riverside Clinic's log" in error_output
        assert "Serving http://127.0.0.1:" in error_output  # the log's tail
    homes = list(tmp_path.iterdir())
    assert len(homes) == (1 if keep else 0)  # kept for a look at the logs with --keep
