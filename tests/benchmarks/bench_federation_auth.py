"""Benchmark: authenticated peer requests against ``/healthz``, on one real server.

Run on demand (not part of the test suite):

    python -m tests.benchmarks.bench_federation_auth [--seconds 3] [--requests 3000] [--clients 1]

One node (the clinic), on SQLite in a temporary folder, with one trusted peer (the
community, peered through the in-memory transport), is served by waitress on
127.0.0.1 from a background thread with 8 request threads, as ``exchange-node serve``
does. A client in a child process (its own interpreter, so its work does not take
this process's GIL) sends over keep-alive ``requests`` sessions, in turn:

- ``GET /federation/v1/peer-status``, each request signed by the peer with its own
  nonce: signature verification, peer lookup, nonce stored. The requests are all
  signed, with the real clock, before any timing starts, so signing is not counted;
- ``GET /healthz``: the same server, the same client loop, no authentication.

Each runs for ``--seconds`` or until ``--requests`` are sent. Printed: requests per
second of each, their ratio (target >= 0.5), and the server's CPU time per request
(this process's CPU time during the run, which only serves, over the requests served).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests
import waitress.server

from exchange_node.protocol.httpsig import sign_request
from tests.node.conftest import Federation, TestClock

ROOT = Path(__file__).resolve().parents[2]
PEER_STATUS = "/federation/v1/peer-status"
HEALTHZ = "/healthz"
SERVER_THREADS = 8  # the default of 'exchange-node serve'
WARM_UP = 50


class SystemClock(TestClock):
    """The real clock: signatures are checked against the time they were made."""

    def __call__(self) -> int:
        return int(time.time())


@dataclass(frozen=True)
class Figure:
    name: str
    requests: int
    failed: int
    seconds: float
    server_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_us(self) -> float:
        return 1e6 * self.server_cpu_seconds / self.requests


@contextmanager
def clinic_server(home: Path) -> Iterator[tuple[str, Federation]]:
    """The clinic, with the community as a trusted peer, served on a free port."""
    federation = Federation(home, lambda name: f"sqlite:///{home / name}.db", SystemClock())
    community, clinic = federation.add("community", "community-network"), federation.add("clinic")
    federation.peer(community, clinic)
    server = waitress.server.create_server(
        clinic.app, host="127.0.0.1", port=0, threads=SERVER_THREADS, ident="exchange-node"
    )
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", federation
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        federation.close()


def presigned_requests(federation: Federation, count: int) -> list[dict[str, str]]:
    """``count`` peer-status requests from the community to the clinic, each with its nonce."""
    community, clinic = federation.nodes["community"], federation.nodes["clinic"]
    with community.node.database.session() as session:
        key = community.node.ring(session).signing_key
    url, now = clinic.url + PEER_STATUS, int(time.time())
    headers = {"Accept": "application/json"}
    return [
        headers | sign_request("GET", url, headers, b"", key=key, now=now) for _ in range(count)
    ]


def measure(args: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory() as folder, clinic_server(Path(folder)) as (base, federation):
        started = time.perf_counter()
        signed = presigned_requests(federation, WARM_UP + args.requests)
        print(f"signed {len(signed)} requests in {time.perf_counter() - started:.2f} s (untimed)")
        command = [sys.executable, "-m", __spec__.name, "--client"]
        with subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as child:
            to_child, from_child = pipes(child)
            setup = {"base": base, "signed": signed, "clients": args.clients}
            setup |= {"seconds": args.seconds, "limit": args.requests, "warm_up": WARM_UP}
            send_line(to_child, json.dumps(setup))
            expect(from_child, "ready")
            figures = [
                run_measurement(to_child, from_child, name) for name in (PEER_STATUS, HEALTHZ)
            ]
            send_line(to_child, "quit")
            child.wait(timeout=30)
        return figures


def pipes(child: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    if child.stdin is None or child.stdout is None:
        raise RuntimeError("the client was started without pipes")
    return child.stdin, child.stdout


def run_measurement(to_child: IO[str], from_child: IO[str], name: str) -> Figure:
    """Tell the client to run ``name``; this process's CPU time over the run is the server's."""
    cpu = time.process_time()
    send_line(to_child, f"go {name}")
    sent, failed, seconds = expect(from_child, "done").split()[1:]
    return Figure(name, int(sent), int(failed), float(seconds), time.process_time() - cpu)


def send_line(stream: IO[str], line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def expect(stream: IO[str], word: str) -> str:
    line = stream.readline().strip()
    if not line.startswith(word):
        raise RuntimeError(f"the client said {line!r}, expected {word!r}")
    return line


def client() -> None:
    """The child: warm up, then run each measurement the parent asks for."""
    setup: dict[str, Any] = json.loads(sys.stdin.readline())
    sessions = [requests.Session() for _ in range(setup["clients"])]
    for session in sessions:
        session.trust_env = False
    signed: list[dict[str, str]] = setup["signed"]
    warm_up, limit = signed[: setup["warm_up"]], setup["limit"]
    plain = [{"Accept": "application/json"}] * limit
    batches = {PEER_STATUS: signed[setup["warm_up"] :], HEALTHZ: plain}
    for session in sessions:
        send_all(session, setup["base"] + HEALTHZ, plain[: setup["warm_up"]], float("inf"))
    send_all(sessions[0], setup["base"] + PEER_STATUS, warm_up, float("inf"))
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            return
        name = line.split()[1]
        sent, failed, seconds = run_clients(
            sessions, setup["base"] + name, batches[name], setup["seconds"]
        )
        print(f"done {sent} {failed} {seconds:.6f}", flush=True)


def run_clients(
    sessions: list[requests.Session], url: str, batch: list[dict[str, str]], seconds: float
) -> tuple[int, int, float]:
    """Send ``batch`` split over the sessions, one thread each, for at most ``seconds``."""
    results: list[tuple[int, int]] = []
    slices = [batch[i :: len(sessions)] for i in range(len(sessions))]
    start = time.perf_counter()
    deadline = start + seconds

    def work(session: requests.Session, part: list[dict[str, str]]) -> None:
        results.append(send_all(session, url, part, deadline))

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(sessions, slices, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


def send_all(
    session: requests.Session, url: str, batch: list[dict[str, str]], deadline: float
) -> tuple[int, int]:
    """Send GETs with each header set in turn until the deadline; (sent, not 200)."""
    sent = failed = 0
    for headers in batch:
        if time.perf_counter() >= deadline:
            break
        response = session.get(url, headers=headers, timeout=10)
        sent += 1
        failed += response.status_code != 200
    return sent, failed


def report(figures: list[Figure], args: argparse.Namespace) -> None:
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}; waitress {SERVER_THREADS} threads, "
        f"{args.clients} keep-alive client(s) in a child process"
    )
    for figure in figures:
        print(
            f"{figure.name:28s} {figure.per_second:8,.0f} req/s  "
            f"({figure.requests} in {figure.seconds:.2f} s, {figure.failed} not 200)  "
            f"server CPU {figure.server_cpu_us:7.0f} us/req"
        )
    authenticated, plain = figures
    ratio = authenticated.per_second / plain.per_second
    print(f"peer-status / healthz throughput: {ratio:.2f} (target >= 0.5)")
    extra = authenticated.server_cpu_us - plain.server_cpu_us
    print(f"authentication costs the server about {extra:.0f} us of CPU per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="longest time per endpoint")
    parser.add_argument("--requests", type=int, default=3000, help="most requests per endpoint")
    parser.add_argument("--clients", type=int, default=1, help="client threads (sessions)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.seconds <= 30:  # the requests are signed up front, for a 60 s window
        parser.error("--seconds must be more than 0 and at most 30")
    if args.client:
        client()
        return
    report(measure(args), args)


if __name__ == "__main__":
    main()
