"""Nodes, referrals and server processes for :mod:`tests.benchmarks.bench_referrals`.

Two nodes on loopback URLs in a temporary folder (SQLite files): the community
network (the referrer) and the clinic (the receiver), peered through the in-memory
transport, the clinic publishing one service that asks for three intake fields.
Referral bodies are valid and consented (SPEC 5.3-5.6), each with its own ids and
made-up person. The clinic is then served by gunicorn as an administrator would run
it (``exchange_node.web:create_app()`` with ``EXCHANGE_HOME``), and the memory and
CPU time of its worker processes are read from ``/proc``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from exchange_node.db.models import OutboxMessage, OutboxState, Peer, Referral, ReferralRole
from exchange_node.node import Node
from exchange_node.protocol.entity import INBOX_PATH
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE, seal_message
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import import_jwk
from exchange_node.protocol.limits import Limits
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE, verify_receipt
from exchange_node.services import outbox
from exchange_node.services.directory_sync import UPDATED, sync_round
from exchange_node.services.referrals import ReferralDraft, create_referral
from exchange_node.settings import load_settings
from tests.benchmarks.directory_data import federation_in
from tests.e2e.conftest import free_ports
from tests.node.conftest import Federation, TestNode

ROOT = Path(__file__).resolve().parents[2]
INTAKE_FIELDS = ("given_name", "phone", "preferred_language")
CATEGORIES = ("identity", "contact", "language")
CONSENT_DAYS = 90
#: Requests are signed up front, so with the longest window the protocol allows (SPEC 9.4).
SIGNING_LIMITS = Limits(http_signature_window=Limits().max_http_signature_window)
INBOX_HEADERS = {
    "Content-Type": ENVELOPE_MEDIA_TYPE,
    "Accept": f"{RECEIPT_MEDIA_TYPE}, application/problem+json",
}
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Nodes:
    """Where the two nodes live, and what the referrals are for."""

    community: Path
    clinic: Path
    community_url: str
    clinic_url: str
    service_id: str


def build_nodes(folder: Path) -> Nodes:
    """The community and the clinic on free loopback ports, peered; one clinic service."""
    community_port, clinic_port = free_ports(2)
    with federation_in(folder) as federation:
        community = add_loopback(federation, "community", community_port, "community-network")
        clinic = add_loopback(federation, "clinic", clinic_port)
        service_id = clinic.publish(intake_fields=INTAKE_FIELDS)
        federation.peer(community, clinic)
        synced = sync_round(community.node, force=True)  # the service, in its directory
        if [result.outcome for result in synced] != [UPDATED]:
            raise RuntimeError(f"the community could not sync the clinic: {synced}")
        return Nodes(
            community.node.settings.home,
            clinic.node.settings.home,
            community.url,
            clinic.url,
            service_id,
        )


def add_loopback(federation: Federation, name: str, port: int, kind: str = "clinic") -> TestNode:
    """A node whose URL is ``http://127.0.0.1:port``, reachable in memory until served."""
    test_node = federation.add(name, kind, url=f"http://127.0.0.1:{port}")
    federation.transport.apps[test_node.url] = test_node.app
    return test_node


@contextmanager
def opened(home: Path) -> Iterator[Node]:
    """The node in ``home`` as a command opens it: real clock, real HTTP transport."""
    node = Node.open(load_settings(home, environ={}))
    try:
        yield node
    finally:
        node.database.dispose()


def peer_row(node: Node, entity_id: str) -> Peer:
    with node.database.session() as session:
        peer = session.scalars(select(Peer).where(Peer.entity_id == entity_id)).one()
        peer.keys  # noqa: B018 (loaded before the session closes)
        return peer


# Referrals ------------------------------------------------------------------------------


def referral_body(nodes: Nodes, number: int, now: int) -> dict[str, Any]:
    """A consented referral to the clinic's service; only made-up data."""
    return {
        "referral_id": str(uuid.uuid4()),
        "service_id": nodes.service_id,
        "person": {
            "given_name": f"Person {number}",
            "phone": f"+44 7700 {number % 1_000_000:06d}",
            "preferred_language": "ar",
        },
        "consent": {
            "consent_id": str(uuid.uuid4()),
            "given_by": "self",
            "recipient": nodes.clinic_url,
            "service_id": nodes.service_id,
            "data_categories": list(CATEGORIES),
            "purpose": "Referral to the clinic's service, and follow-up on its outcome.",
            "method": "verbal",
            "captured_by": "staff-0042",
            "captured_at": format_timestamp(now - 60),
            "expires_at": format_timestamp(now + CONSENT_DAYS * 86_400),
        },
        "safe_contact": {
            "channels": ["sms", "phone-call"],
            "windows": [{"days": ["mon", "tue", "wed"], "start": "15:30", "end": "18:00"}],
            "time_zone": "Europe/London",
            "voicemail_allowed": False,
            "may_name_organization": False,
            "do_not_disclose": ["the name of the referring network"],
            "notes": "Text first and wait for a reply.",
        },
    }


def signed_inbox_posts(nodes: Nodes, count: int) -> list[tuple[dict[str, str], str]]:
    """``count`` referral envelopes from the community, each POST signed with its own nonce.

    Sealed and signed now, with the real clock: run them within the signature window.
    """
    with opened(nodes.community) as community:
        clinic = peer_row(community, nodes.clinic_url)
        with community.database.session() as session:
            signing_key = community.ring(session).signing_key
        recipient_key, url = outbox.recipient_key(clinic), nodes.clinic_url + INBOX_PATH
        posts = []
        for number in range(count):
            now = int(time.time())
            envelope = seal_message(
                "referral",
                referral_body(nodes, number, now),
                issuer=nodes.community_url,
                audience=nodes.clinic_url,
                signing_key=signing_key,
                recipient_key=recipient_key,
                now=now,
            ).token
            body = envelope.encode("ascii")
            signature = sign_request(
                "POST", url, INBOX_HEADERS, body, key=signing_key, now=now, limits=SIGNING_LIMITS
            )
            posts.append((INBOX_HEADERS | signature, envelope))
        return posts


def referral_draft(nodes: Nodes, number: int, now: int) -> ReferralDraft:
    """What staff would enter for :func:`referral_body`'s referral (made-up data)."""
    body = referral_body(nodes, number, now)
    return ReferralDraft(
        peer=nodes.clinic_url,
        service_id=nodes.service_id,
        person=body["person"],
        categories=CATEGORIES,
        purpose=body["consent"]["purpose"],
        given_by="self",
        method="verbal",
        captured_by="staff-0042",
        expires_at=now + CONSENT_DAYS * 86_400,
        safe_contact=body["safe_contact"],
    )


def queue_referrals(nodes: Nodes, count: int, batch: int = 500) -> None:
    """``count`` referrals to the clinic, created as staff do (stored, sealed, queued)."""
    with opened(nodes.community) as community:
        for start in range(0, count, batch):
            with community.database.session() as session:
                now = int(time.time())
                for number in range(start, min(count, start + batch)):
                    draft = referral_draft(nodes, number, now)
                    create_referral(community, session, draft, actor="cli", now=now)


def received_referrals(nodes: Nodes) -> int:
    """How many referrals the clinic holds as received (one per accepted referral message)."""
    with opened(nodes.clinic) as clinic, clinic.database.session() as session:
        query = select(func.count()).where(Referral.role == ReferralRole.RECEIVED)
        return session.scalar(query.select_from(Referral)) or 0


def outbox_envelopes(nodes: Nodes) -> dict[int, tuple[str, str]]:
    """The community's pending outbox rows: id -> (jti, envelope), to check receipts later."""
    with opened(nodes.community) as community, community.database.session() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.jti, OutboxMessage.envelope).where(
                OutboxMessage.state == OutboxState.PENDING
            )
        )
        return {row.id: (row.jti, row.envelope or "") for row in rows}


def outbox_states(node: Node) -> dict[str, int]:
    """How many outbox rows are in each state."""
    with node.database.session() as session:
        rows = session.execute(
            select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
        )
        return {state: count for state, count in rows.tuples()}


def verify_receipts(nodes: Nodes, sent: dict[int, tuple[str, str]]) -> int:
    """How many delivered rows hold a receipt the clinic signed for exactly what was sent."""
    with opened(nodes.community) as community:
        clinic = peer_row(community, nodes.clinic_url)
        keys = [import_jwk(key.jwk, "sig") for key in clinic.keys if key.use == "sig"]
        with community.database.session() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.receipt).where(
                    OutboxMessage.state == OutboxState.DELIVERED
                )
            ).all()
    verified, now = 0, int(time.time())
    for row in rows:
        jti, envelope = sent.get(row.id, ("", ""))
        try:
            verify_receipt(
                row.receipt or "",
                issuer=nodes.clinic_url,
                issuer_keys=keys,
                audience=nodes.community_url,
                envelope=envelope,
                message_jti=jti,
                now=now,
            )
        except ProtocolError:
            continue
        verified += 1
    return verified


# Processes ------------------------------------------------------------------------------


@dataclass
class Gunicorn:
    """A node served by gunicorn: its master process, and what its workers used."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def workers(self) -> list[int]:
        """The worker processes: the master's children."""
        return children(self.process.pid)

    def cpu_seconds(self) -> float:
        """User and system CPU time of the workers so far."""
        return sum(process_cpu_seconds(pid) for pid in self.workers())


@contextmanager
def gunicorn(home: Path, url: str, worker_class: str, threads: int) -> Iterator[Gunicorn]:
    """Serve the node in ``home`` on ``url``'s port: 2 workers, stopped on exit."""
    port = url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    command += ["--worker-class", worker_class, "--log-level", "warning"]
    if worker_class == "gthread":
        command += ["--threads", str(threads)]
    command.append("exchange_node.web:create_app()")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    log = home.parent / f"{home.name}-gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env=environment | {"EXCHANGE_HOME": str(home)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Gunicorn(process, url, log)
    try:
        wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(server: Gunicorn) -> None:
    """Until ``/healthz`` answers and both workers are up; else raise with the log's end."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline and server.process.poll() is None:
            try:
                if http.get(server.url + "/healthz", timeout=5).ok and len(server.workers()) == 2:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(
        f"gunicorn did not serve {server.url} (exit {server.process.poll()}):\n{tail}"
    )


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it exited meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")
