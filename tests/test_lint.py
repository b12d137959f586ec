"""The house rules, enforced in the test run: ruff everywhere, mypy strict on the protocol core,
and the sans-IO rule of exchange_node/protocol/ (its nested ruff.toml bans I/O imports)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, input=stdin, capture_output=True, text=True, check=False)  # noqa: S603


@pytest.mark.skipif(RUFF is None, reason="ruff is installed by the test extra")
def test_ruff_check_passes() -> None:
    result = run(str(RUFF), "check", "--quiet", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "source",
    [
        "import flask\n",
        "from sqlalchemy import select\n",
        "import requests\n",
        "from os import environ\n",
        "import os\nos.environ.get('X')\n",
        "import time\ntime.time()\n",
        "from datetime import datetime\ndatetime.now()\n",
    ],
)
@pytest.mark.skipif(RUFF is None, reason="ruff is installed by the test extra")
def test_protocol_core_bans_io(source: str) -> None:
    probe = "exchange_node/protocol/_probe.py"
    inside = run(str(RUFF), "check", "--no-cache", "--stdin-filename", probe, "-", stdin=source)
    assert inside.returncode == 1, inside.stdout
    assert "TID251" in inside.stdout
    outside = run(
        str(RUFF),
        "check",
        "--no-cache",
        "--stdin-filename",
        "exchange_node/_probe.py",
        "-",
        stdin=source,
    )
    assert "TID251" not in outside.stdout


def test_mypy_passes_strict_on_the_protocol_core() -> None:
    result = run(sys.executable, "-m", "mypy")  # the package; strict on exchange_node.protocol
    assert result.returncode == 0, result.stdout + result.stderr
