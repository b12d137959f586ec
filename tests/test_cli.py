from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

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
