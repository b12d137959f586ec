from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from exchange_node import cli
from exchange_node.cli import main

VECTORS = Path(__file__).resolve().parents[1] / "protocol" / "vectors"


def test_conformance_passes_on_the_published_vectors() -> None:
    result = CliRunner().invoke(main, ["conformance", "--vectors", str(VECTORS)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(" passed, 0 failed")


def test_conformance_reports_a_failing_vector(tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    shutil.copytree(VECTORS, folder)
    document = json.loads((folder / "messages.json").read_text())
    document["vectors"][0]["expected"] = {"valid": False, "error": "expired"}
    (folder / "messages.json").write_text(json.dumps(document))
    result = CliRunner().invoke(main, ["conformance", "--vectors", str(folder)])
    assert result.exit_code == 1
    assert "FAIL messages.json:referral-valid: expected expired, got valid" in result.output


def test_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["conformance", "--vectors", str(tmp_path)])
    assert result.exit_code == 1
    assert "no conformance vectors" in result.output
    assert "Traceback" not in result.output


def test_every_command_module_is_in_the_lazy_table() -> None:
    """``exchange-node`` imports a command's module only when it runs: the table must name
    every command each module defines, and nothing else."""
    folder = Path(cli.__file__).parent
    defined = {}
    for path in sorted(folder.glob("*.py")):
        if path.stem == "__main__" or path.stem.startswith("directory_"):
            continue  # runs the command line when imported; subcommands of `directory`
        module = importlib.import_module(f"exchange_node.cli.{path.stem}")
        if path.stem != "__init__" and module.__dict__.get("COMMANDS") is not None:
            defined |= {command.name: path.stem for command in module.COMMANDS}
    assert defined == cli.COMMAND_MODULES


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from exchange_node.cli import main;"
        "CliRunner().invoke(main, ['conformance', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('exchange_node.cli.')))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['exchange_node.cli.conformance']"
