"""``exchange-node demo``: the whole referral loop on three real nodes, and its cleanup.

The demo runs as an administrator would run it (a child process); its output must
show each key fact of the loop, and afterwards no node may be left listening and no
home folder left behind. With ``--keep`` the nodes keep answering until stopped with
the command it prints, and the accounts it prints sign in to each node's web app.
A failing or interrupted step stops the nodes too (run in this process, with a step
that fails on purpose).
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
#: The accounts a newcomer needs: someone to refer, someone to answer, an administrator.
ACCOUNTS = {
    "volunteer@community.demo": "staff",
    "admin@community.demo": "admin",
    "intake@clinic.demo": "staff",
    "admin@clinic.demo": "admin",
    "intake@school.demo": "staff",
    "admin@school.demo": "admin",
}


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


def printed_accounts(output: str) -> list[tuple[str, str, str, str]]:
    """(sign-in URL, e-mail, role, password) of each account a ``--keep`` demo printed."""
    accounts, url = [], ""
    for line in output.splitlines():
        if found := re.fullmatch(r"\s+.+?\s+(http://127\.0\.0\.1:\d+/login)", line):
            url = found.group(1)
        elif found := re.fullmatch(r"\s+(\S+@\S+)\s+(staff|admin)\s+password: (\S+)", line):
            accounts.append((url, *found.groups()))
    return accounts


def csrf_token_in(page: str) -> str:
    found = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert found, page
    return found.group(1)


def sign_in(url: str, email: str, password: str) -> requests.Session:
    """Sign in on the page at ``url`` as a browser would: GET the form, POST it with the token."""
    http = requests.Session()
    http.trust_env = False
    form = http.get(url, timeout=5)
    assert form.status_code == 200
    [cookie] = http.cookies  # the session, holding the CSRF token; http here, so not Secure
    assert not cookie.secure
    answer = http.post(
        url,
        data={"email": email, "password": password, "csrf_token": csrf_token_in(form.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, f"{email}: {answer.status_code}"
    return http


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

    for email, role in ACCOUNTS.items():
        assert re.search(rf":\s+{re.escape(email)} \({role}\)$", output, re.MULTILINE), email
    assert "password:" not in output  # printed only with --keep, when the nodes stay

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
    check_the_printed_accounts_sign_in(output, [url for url, _ in nodes])

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


def check_the_printed_accounts_sign_in(output: str, node_urls: list[str]) -> None:
    """Each printed account signs in on its own node's page, and only there."""
    accounts = printed_accounts(output)
    assert {email: role for _, email, role, _ in accounts} == ACCOUNTS, output
    assert {url for url, *_ in accounts} == {f"{url}/login" for url in node_urls}
    assert len({password for *_, password in accounts}) == len(accounts)
    for url, email, _, password in accounts:
        with sign_in(url, email, password) as http:
            home = http.get(url.removesuffix("/login") + "/", allow_redirects=False, timeout=5)
            assert home.status_code == 200, f"{email} is not signed in: {home.status_code}"
            assert "Sign out" in home.text
    # The volunteer's account is the youth network's own: the clinic does not know it.
    [volunteer] = [account for account in accounts if account[1] == "volunteer@community.demo"]
    [clinic_login] = {url for url, email, *_ in accounts if email.endswith("@clinic.demo")}
    with requests.Session() as http:
        http.trust_env = False
        token = csrf_token_in(http.get(clinic_login, timeout=5).text)
        data = {"email": volunteer[1], "password": volunteer[3], "csrf_token": token}
        refused = http.post(clinic_login, data=data, allow_redirects=False, timeout=10)
    assert refused.status_code == 401


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
