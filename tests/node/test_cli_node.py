"""The command line for creating and running a node: init, migrate, keys, peer, worker.

Every failure is one line on the terminal and exit status 1 (2 for a usage error),
never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exchange_node.cli import common, main
from exchange_node.cli import keys as cli_keys
from exchange_node.cli import node as cli_node
from exchange_node.cli import peers as cli_peers
from exchange_node.node import Node
from tests.node.conftest import Federation

URL = "https://clinic.example"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EXCHANGE_* variable of the developer's shell reaches these commands."""
    for name in list(os.environ):
        if name.startswith("EXCHANGE_") and name != "EXCHANGE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def dispose_opened_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close what the commands open: a process exit would, a test run does not."""
    opened: list[Node] = []

    def open_and_record(home: Path | None) -> Node:
        opened.append(common.open_node(home))
        return opened[-1]

    for module in (cli_keys, cli_node, cli_peers):
        monkeypatch.setattr(module, "open_node", open_and_record)
    yield
    for node in opened:
        node.database.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "clinic"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def init(home: Path, *extra: str, url: str = URL, kind: str = "clinic") -> Result:
    return run(
        "init", "--home", str(home), "--name", "Clinic", "--kind", kind, "--url", url, *extra
    )


def assert_one_line_error(result: Result, *fragments: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, nothing escaped
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0]


def keys_of(home: Path) -> Sequence[dict[str, object]]:
    result = run("keys", "show", "--home", str(home), "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_init_prints_the_url_and_thumbprint(home: Path) -> None:
    result = init(home, "--language", "en", "--language", "es")
    assert result.exit_code == 0, result.output
    assert f"Created the node {URL} in {home.resolve()}" in result.output
    signing = [row for row in keys_of(home) if row["use"] == "sig"]
    assert f"Signing key thumbprint: {signing[0]['kid']}" in result.output
    assert "set EXCHANGE_KEY_PASSPHRASE" in result.output
    assert 'languages = ["en", "es"]' in (home / "node.toml").read_text(encoding="utf-8")


def test_init_drops_a_trailing_slash_from_the_url(home: Path) -> None:
    assert init(home, url=URL + "/").exit_code == 0
    assert f'url = "{URL}"' in (home / "node.toml").read_text(encoding="utf-8")


def test_init_twice_is_refused_in_one_line(home: Path) -> None:
    assert init(home).exit_code == 0
    assert_one_line_error(init(home), "already holds a node", "[configuration]")


def test_init_refuses_http_off_loopback(home: Path) -> None:
    assert_one_line_error(init(home, url="http://clinic.example"), "https")
    assert not (home / "node.toml").exists()


def test_init_accepts_http_on_loopback(home: Path) -> None:
    assert init(home, url="http://127.0.0.1:8040").exit_code == 0


def test_init_validates_the_kind(home: Path) -> None:
    assert_one_line_error(init(home, kind="hospital"), "--kind", exit_code=2)


@pytest.mark.parametrize(
    "command",
    [
        ("peer", "list"),
        ("peer", "requests"),
        ("keys", "show"),
        ("keys", "rotate"),
        ("worker", "--once"),
        ("migrate",),
    ],
)
def test_commands_on_a_missing_home_say_to_run_init(tmp_path: Path, command: tuple[str]) -> None:
    home = tmp_path / "nowhere"
    result = run(*command, "--home", str(home))
    assert_one_line_error(result, "run 'exchange-node init'", "[not_initialized]")
    assert not home.exists()


def test_migrate_on_an_initialized_home_is_up_to_date(home: Path) -> None:
    init(home)
    result = run("migrate", "--home", str(home))
    assert (result.exit_code, result.output) == (0, "The database is up to date.\n")


def test_bad_environment_is_one_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init(home)
    monkeypatch.setenv("EXCHANGE_PORT", "eighty")
    assert_one_line_error(run("peer", "list", "--home", str(home)), "EXCHANGE_PORT='eighty'")


def test_home_from_exchange_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init(home)
    monkeypatch.setenv("EXCHANGE_HOME", str(home))
    assert run("peer", "list", "--json").output == "[]\n"


def test_keys_show_json_lists_the_first_keys_as_active(home: Path) -> None:
    init(home)
    rows = keys_of(home)
    assert sorted((row["use"], row["state"]) for row in rows) == [
        ("enc", "active"),
        ("sig", "active"),
    ]
    assert all(row["retire_at"] is None for row in rows)


def test_keys_show_without_json_is_a_table(home: Path) -> None:
    init(home)
    result = run("keys", "show", "--home", str(home))
    assert result.output.splitlines()[0].split() == [
        "KID",
        "USE",
        "STATE",
        "PUBLISHED_AT",
        "ACTIVE_FROM",
        "RETIRE_AT",
    ]


def test_keys_rotate_publishes_next_keys_and_refuses_a_second_rotation(home: Path) -> None:
    init(home)
    result = run("keys", "rotate", "--home", str(home))
    assert result.exit_code == 0, result.output
    assert "is published now and signs from" in result.output
    states = sorted((row["use"], row["state"]) for row in keys_of(home))
    assert states == [("enc", "active"), ("enc", "next"), ("sig", "active"), ("sig", "next")]
    assert_one_line_error(run("keys", "rotate", "--home", str(home)), "already under way")


def test_peer_list_json_is_json(federation: Federation) -> None:
    community, clinic = federation.add("community", "community-network"), federation.add("clinic")
    federation.peer(community, clinic)
    result = run("peer", "list", "--home", str(community.node.settings.home), "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["entity_id"], row["status"], row["kind"]) == (clinic.url, "trusted", "clinic")
    assert row["signing_keys"] == [clinic.thumbprint]


def test_peer_list_on_a_new_node_is_empty(home: Path) -> None:
    init(home)
    assert run("peer", "list", "--home", str(home), "--json").output == "[]\n"
    assert run("peer", "list", "--home", str(home)).output == "(none)\n"


def test_unknown_peer_is_one_line(home: Path) -> None:
    init(home)
    result = run("peer", "show", "https://nobody.example", "--home", str(home))
    assert_one_line_error(result, "no peer https://nobody.example", "[not_found]")


def test_worker_once_reports_its_round(home: Path) -> None:
    init(home)
    result = run("worker", "--once", "--home", str(home))
    assert (result.exit_code, result.output) == (
        0,
        "0 peers refreshed, 0 failed; capacity: 0 updated, 0 unchanged, 0 failed\n"
        "outbox: 0 delivered, 0 to retry, 0 failed; 0 referrals purged past retention\n",
    )


def test_init_exist_ok_accepts_the_same_node_and_refuses_another(home: Path) -> None:
    first = init(home)
    assert first.exit_code == 0, first.output
    thumbprint = first.output.split("thumbprint: ")[1].split()[0]
    again = init(home, "--exist-ok")
    assert again.exit_code == 0, again.output
    assert "already exists" in again.output
    assert thumbprint in again.output
    other = init(home, "--exist-ok", url="https://other.example")
    assert_one_line_error(other, "holds the node", "choose another --home")
