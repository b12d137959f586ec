"""Benchmark: referral intake at the inbox, draining the outbox, and a node's peak memory.

Run on demand (not part of the test suite):

    python -m tests.benchmarks.bench_referrals [--quick] [--requests 2000] [--seconds 30]
        [--clients 4] [--rounds 3] [--referrals 10000] [--drain-timeout 600]
        [--worker-class gthread|sync] [--threads 4]

``--quick`` (200 requests, 10 s, 300 referrals) is a smoke run of the harness. The
machine's load average is printed before and after: the figures are only as quiet as
the machine was.

Two nodes in a temporary folder, each on SQLite (:mod:`tests.benchmarks.referral_data`):
a community network and a clinic with one service asking for three intake fields,
peered through the in-memory transport. The clinic is then served on 127.0.0.1 by
gunicorn, 2 workers, running ``exchange_node.web:create_app()`` with ``EXCHANGE_HOME``
set, as in production. The workers are ``gthread`` with ``--threads`` 4 each by default
(``--worker-class sync`` to compare): a sync worker serves one request at a time and
closes the connection after each answer, so the sender's concurrent deliveries queue
behind two processes and each one opens a new TCP connection, while the worker idles
whenever a request waits on SQLite's write lock or the disk. A gthread worker keeps
connections alive (the sender reuses them) and overlaps those waits; more threads than
4 add no CPU (one interpreter lock per worker), only more writers contending for SQLite.

1. **Inbox**: ``--requests`` distinct referrals, sealed by the community to the clinic's
   encryption key, each POST to ``/federation/v1/inbox`` signed with its own nonce, all
   before timing (just before the run: signatures hold for 300 s plus the skew). A
   client in a child process sends them over ``--clients`` threads, each its own
   ``requests`` session; every answer must be ``202`` (HTTP signature, decrypt, verify,
   replay check, store, receipt). Then ``GET /healthz``, the same server and client
   loop. The two alternate ``--rounds`` times, each share of the requests for at most
   ``--seconds`` / ``--rounds``, so that a change of load on the machine hits both.
   Printed: both rates (summed over the rounds), their ratio (target >= 0.30), and the
   workers' CPU time per request.
2. **Drain**: ``--referrals`` referrals created in the community as staff create them
   (``referrals.create_referral``: stored, sealed, queued in the outbox; untimed; the
   community synced the clinic's directory in memory for that). Then a sender process
   opens the community and calls ``delivery.deliver_due`` (default limit and
   concurrency) until none is pending: timed end to end, from the first claim of the
   queued rows to the last receipt recorded (target >= 300/s); the sender's CPU time
   per delivered referral is printed too.
   Every receipt is then verified again here (untimed) against the bytes that were sent.
3. **Memory**: peak resident set (VmHWM) of the gunicorn workers after both runs, and
   of the sender process after the drain.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from exchange_node.db.models import OutboxState
from exchange_node.protocol.entity import INBOX_PATH
from tests.benchmarks import referral_data as data

HEALTHZ = "/healthz"
ENDPOINTS = (INBOX_PATH, HEALTHZ)
DELIVERY = "exchange_node.services.delivery"
WARM_UP = 20
INBOX_TARGET, DRAIN_TARGET = 0.30, 300.0
#: Option -> (default, default with --quick).
SIZES: dict[str, tuple[float, float]] = {
    "requests": (2000, 200),
    "seconds": (30.0, 10.0),
    "referrals": (10_000, 300),
}


@dataclass(frozen=True)
class Figure:
    name: str
    requests: int
    failed: int
    seconds: float
    server_cpu_seconds: float
    first_failure: str

    @classmethod
    def total(cls, rounds: tuple[Figure, ...]) -> Figure:
        """The rounds of one endpoint, summed."""
        failures = [figure.first_failure for figure in rounds if figure.first_failure]
        return cls(
            rounds[0].name,
            sum(figure.requests for figure in rounds),
            sum(figure.failed for figure in rounds),
            sum(figure.seconds for figure in rounds),
            sum(figure.server_cpu_seconds for figure in rounds),
            failures[0] if failures else "",
        )

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_us(self) -> float:
        return 1e6 * self.server_cpu_seconds / max(1, self.requests)


def measure(args: argparse.Namespace) -> None:
    print_machine(args)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        nodes = data.build_nodes(Path(folder))
        print(f"setup: two nodes initialized and peered in {time.perf_counter() - started:.1f} s")
        with data.gunicorn(
            nodes.clinic, nodes.clinic_url, args.worker_class, args.threads
        ) as server:
            report_inbox(measure_inbox(nodes, server, args))
            print(f"the clinic stored {data.received_referrals(nodes)} received referrals")
            if importlib.util.find_spec(DELIVERY) is None:
                print(f"outbox drain: not measured, {DELIVERY} does not exist (yet)")
                drained = None
            else:
                drained = drain_referrals(nodes, server, args.referrals, args.drain_timeout)
                report_drain(drained)
            report_memory(server, drained)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


# 1. Inbox --------------------------------------------------------------------------------


def measure_inbox(
    nodes: data.Nodes, server: data.Gunicorn, args: argparse.Namespace
) -> list[Figure]:
    started = time.perf_counter()
    posts = data.signed_inbox_posts(nodes, WARM_UP + args.requests)
    print(
        f"sealed and signed {len(posts)} referral POSTs in "
        f"{time.perf_counter() - started:.1f} s (untimed); envelope {len(posts[0][1])} bytes"
    )
    command = [sys.executable, "-m", __spec__.name, "--client"]
    with subprocess.Popen(  # noqa: S603
        command, cwd=data.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        to_child, from_child = pipes(child)
        setup = {"base": server.url, "posts": posts, "clients": args.clients}
        setup |= {"seconds": args.seconds / args.rounds, "limit": args.requests}
        setup |= {"warm_up": WARM_UP, "rounds": args.rounds}
        send_line(to_child, json.dumps(setup))
        expect(from_child, "ready")
        rounds = [
            [run_measurement(to_child, from_child, server, name, n) for name in ENDPOINTS]
            for n in range(args.rounds)
        ]
        send_line(to_child, "quit")
        child.wait(timeout=30)
    return [Figure.total(figures) for figures in zip(*rounds, strict=True)]


def pipes(child: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    if child.stdin is None or child.stdout is None:
        raise RuntimeError("the client was started without pipes")
    return child.stdin, child.stdout


def run_measurement(
    to_child: IO[str], from_child: IO[str], server: data.Gunicorn, name: str, round_: int
) -> Figure:
    """Tell the client to run round ``round_`` of ``name``; the workers' CPU time is the
    server's."""
    cpu = server.cpu_seconds()
    send_line(to_child, f"go {name} {round_}")
    done = json.loads(expect(from_child, "done").split(maxsplit=1)[1])
    return Figure(
        name,
        done["sent"],
        done["failed"],
        done["seconds"],
        server.cpu_seconds() - cpu,
        done["failure"],
    )


def send_line(stream: IO[str], line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def expect(stream: IO[str], word: str) -> str:
    line = stream.readline().strip()
    if not line.startswith(word):
        raise RuntimeError(f"the client said {line!r}, expected {word!r}")
    return line


# The client (a child process) --------------------------------------------------------------

Request = tuple[dict[str, str], str | None]  # headers, and the body of a POST


def client() -> None:
    """The child: warm up, then run each measurement the parent asks for."""
    setup: dict[str, Any] = json.loads(sys.stdin.readline())
    sessions = [requests.Session() for _ in range(setup["clients"])]
    for session in sessions:
        session.trust_env = False
    posts: list[Request] = [(headers, body) for headers, body in setup["posts"]]
    warm_up, limit = setup["warm_up"], setup["limit"]
    gets: list[Request] = [({"Accept": "application/json"}, None)] * limit
    batches = {INBOX_PATH: posts[warm_up:], HEALTHZ: gets}
    rounds = setup["rounds"]
    for session in sessions:
        send_all(session, setup["base"] + HEALTHZ, gets[:warm_up], float("inf"))
    send_all(sessions[0], setup["base"] + INBOX_PATH, posts[:warm_up], float("inf"))
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            return
        name, round_ = line.split()[1:]
        batch = batches[name][int(round_) :: rounds]
        done = run_clients(sessions, setup["base"] + name, batch, setup["seconds"])
        print("done " + json.dumps(done), flush=True)


def run_clients(
    sessions: list[requests.Session], url: str, batch: list[Request], seconds: float
) -> dict[str, Any]:
    """Send ``batch`` split over the sessions, one thread each, for at most ``seconds``."""
    results: list[tuple[int, int, str]] = []
    slices = [batch[i :: len(sessions)] for i in range(len(sessions))]
    start = time.perf_counter()
    deadline = start + seconds

    def work(session: requests.Session, part: list[Request]) -> None:
        results.append(send_all(session, url, part, deadline))

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(sessions, slices, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    failures = [r[2] for r in results if r[2]]
    return {
        "sent": sum(r[0] for r in results),
        "failed": sum(r[1] for r in results),
        "seconds": elapsed,
        "failure": failures[0] if failures else "",
    }


def send_all(
    session: requests.Session, url: str, batch: list[Request], deadline: float
) -> tuple[int, int, str]:
    """Send each request in turn until the deadline; (sent, failed, the first failure).

    A GET must answer 200, a POST to the inbox 202 (accepted, with its receipt).
    """
    sent = failed = 0
    first = ""
    for headers, body in batch:
        if time.perf_counter() >= deadline:
            break
        if body is None:
            response = session.get(url, headers=headers, timeout=30)
        else:
            response = session.post(url, headers=headers, data=body.encode("ascii"), timeout=30)
        sent += 1
        if response.status_code != (200 if body is None else 202):
            failed += 1
            first = first or f"{response.status_code} {problem_code(response)}"
    return sent, failed, first


def problem_code(response: requests.Response) -> str:
    """The problem's code only: an answer may not be echoed whole (it could hold anything)."""
    try:
        return str(response.json().get("code", "?"))
    except ValueError:
        return "(no problem document)"


# 2. Drain ----------------------------------------------------------------------------------


def drain_referrals(
    nodes: data.Nodes, server: data.Gunicorn, count: int, timeout: float
) -> dict[str, Any]:
    """Queue ``count`` referrals, drain them from a sender process, verify the receipts."""
    started = time.perf_counter()
    data.queue_referrals(nodes, count)
    sent = data.outbox_envelopes(nodes)
    print(f"queued {len(sent)} referrals in {time.perf_counter() - started:.1f} s (untimed)")
    command = [sys.executable, "-m", __spec__.name, "--sender", str(nodes.community)]
    command += ["--drain-timeout", str(timeout)]
    server_cpu = server.cpu_seconds()
    result = subprocess.run(  # noqa: S603
        command, cwd=data.ROOT, capture_output=True, text=True, check=False
    )
    server_cpu = server.cpu_seconds() - server_cpu
    if result.returncode != 0:
        raise RuntimeError(f"the sender failed ({result.returncode}):\n{result.stderr[-3000:]}")
    drained: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    started = time.perf_counter()
    drained |= {"queued": len(sent), "receipts_verified": data.verify_receipts(nodes, sent)}
    drained["server_cpu_seconds"] = server_cpu
    print(f"receipts checked in {time.perf_counter() - started:.1f} s (untimed)")
    return drained


def sender(home: Path, timeout: float) -> None:
    """The child: deliver the outbox with ``deliver_due`` until nothing is pending.

    Timed from the first claim to the last receipt recorded: the rows are counted only
    when a call claimed nothing (all done, or all waiting for a backoff).
    """
    from exchange_node.services.delivery import deliver_due  # imported here: may not exist yet

    with data.opened(home) as node:
        calls = retried = resealed = 0
        started, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - started < timeout:
            report = deliver_due(node)
            calls, retried, resealed = (
                calls + 1,
                retried + report.retried,
                resealed + report.resealed,
            )
            if report.claimed == 0:
                if not data.outbox_states(node).get(OutboxState.PENDING, 0):
                    break
                time.sleep(0.05)  # nothing was due (backoff): do not spin
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        states = data.outbox_states(node)
    figures = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "deliver_due_calls": calls,
        "retried": retried,
        "resealed": resealed,
        "delivered": states.get(OutboxState.DELIVERED, 0),
        "failed": states.get(OutboxState.FAILED, 0),
        "pending": states.get(OutboxState.PENDING, 0),
        "peak_rss_mib": data.peak_rss_mib(),
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures), flush=True)


# Report ------------------------------------------------------------------------------------


def print_machine(args: argparse.Namespace) -> None:
    serving = f"gunicorn {importlib.metadata.version('gunicorn')}, 2 workers ({args.worker_class}"
    serving += f", {args.threads} threads each)" if args.worker_class == "gthread" else ")"
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before; "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; {serving}; "
        f"{args.clients} client thread(s) in a child process"
    )


def report_inbox(figures: list[Figure]) -> None:
    for figure in figures:
        failure = f", first: {figure.first_failure}" if figure.failed else ""
        print(
            f"{figure.name:22s} {figure.per_second:7,.0f} req/s  ({figure.requests} in "
            f"{figure.seconds:.2f} s, {figure.failed} failed{failure})  "
            f"server CPU {figure.server_cpu_us:6.0f} us/req"
        )
    inbox, plain = figures
    ratio = inbox.per_second / plain.per_second
    print(f"inbox / healthz throughput: {ratio:.2f} (target >= {INBOX_TARGET:.2f})")


def report_drain(drained: dict[str, Any]) -> None:
    rate = drained["delivered"] / drained["seconds"] if drained["seconds"] else 0.0
    per = max(1, drained["delivered"])
    print(
        f"outbox drain: {drained['delivered']}/{drained['queued']} delivered in "
        f"{drained['seconds']:.2f} s: {rate:,.0f}/s (target >= {DRAIN_TARGET:.0f}/s); "
        f"failed {drained['failed']}, still pending {drained['pending']}; "
        f"{drained['deliver_due_calls']} deliver_due calls, {drained['retried']} attempts "
        f"to retry, {drained['resealed']} re-sealed; receipts verified again "
        f"{drained['receipts_verified']}/{drained['delivered']}; sender CPU "
        f"{drained['cpu_seconds']:.1f} s ({1e3 * drained['cpu_seconds'] / per:.1f} ms/referral), "
        f"receiver CPU {1e3 * drained['server_cpu_seconds'] / per:.1f} ms/referral"
    )


def report_memory(server: data.Gunicorn, drained: dict[str, Any] | None) -> None:
    workers = ", ".join(f"{data.peak_rss_mib(pid):.0f}" for pid in server.workers())
    master = data.peak_rss_mib(server.process.pid)
    sender = f"; sender {drained['peak_rss_mib']:.0f} MiB" if drained else ""
    print(f"peak RSS (VmHWM): gunicorn workers {workers} MiB (master {master:.0f} MiB){sender}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, help="most inbox POSTs (2000; quick 200)")
    parser.add_argument("--seconds", type=float, help="longest time per endpoint (30; quick 10)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (sessions)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternations of the two endpoints (load drifts)"
    )
    parser.add_argument("--referrals", type=int, help="referrals to drain (10000; quick 300)")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="give up after")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="gthread",
        help="gunicorn worker class (gthread: keep-alive and several requests per worker)",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sender", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client()
        return
    if args.sender:
        sender(args.sender, args.drain_timeout)
        return
    for name, (full, quick) in SIZES.items():  # what was given wins over --quick
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if not 1 <= args.rounds <= args.requests:
        parser.error("--rounds must be at least 1 and at most --requests")
    if not 0 < args.seconds <= 120:  # the POSTs are signed up front, for 300 s
        parser.error("--seconds must be more than 0 and at most 120")
    measure(args)


if __name__ == "__main__":
    main()
