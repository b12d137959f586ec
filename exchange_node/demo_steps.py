"""The steps of ``exchange-node demo``, each told in plain words for someone new to the exchange.

Each step runs real ``exchange-node`` commands on the demo's nodes (printed as an
administrator would type them, without ``--home``) and says what happened and why it
matters for the person being referred. Starting and stopping the nodes is
:mod:`exchange_node.demo`; the processes are :mod:`exchange_node.demo_nodes`.
"""

from __future__ import annotations

import json
import shlex
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange_node.demo_nodes import (
    Account,
    DemoError,
    DemoNode,
    account_arguments,
    add_accounts_side_by_side,
    initialize_side_by_side,
    run_side_by_side,
    wait_for,
)
from exchange_node.demo_referral import (
    PERSON,
    deleted_at_peer,
    delivery_state,
    failed_message,
    show_referral,
)

WIDTH = 92
#: How long a message may take to reach a peer and be answered (the worker looks 5 times a second).
DELIVERY_SECONDS = 30.0
#: Who signs in to each node's web app, (e-mail, role) by node key: a volunteer who refers
#: people or intake staff who answer referrals, and an administrator (peers, users, keys).
ACCOUNTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "community": (("volunteer@community.demo", "staff"), ("admin@community.demo", "admin")),
    "clinic": (("intake@clinic.demo", "staff"), ("admin@clinic.demo", "admin")),
    "school": (("intake@school.demo", "staff"), ("admin@school.demo", "admin")),
}
#: The clinic's service and its capacity (``service add`` and ``capacity set SERVICE``).
CLINIC_SERVICE = (
    "--name", "Youth sexual health drop-in",
    "--description", "Confidential sexual health care for young people, no appointment.",
    "--category", "sexual-health=Sexual health", "--affirming",
    "--minimum-age", "13", "--maximum-age", "25", "--area", "Riverside",
)  # fmt: skip
CLINIC_CAPACITY = (
    "--status", "capacity", "--accepting", "--wait-days", "2",
    "--intake-field", "given_name", "--intake-field", "phone", "--intake-field", "pronouns",
)  # fmt: skip
SCHOOL_SERVICE = (
    "--name", "After-school LGBTQ+ support group",
    "--description", "A weekly, staff-led group where students can be themselves.",
    "--category", "peer-support=Peer support", "--affirming",
    "--minimum-age", "11", "--maximum-age", "18", "--area", "Northside",
)  # fmt: skip
SCHOOL_CAPACITY = (
    "--status", "waitlist", "--accepting", "--wait-days", "7", "--intake-field",
    "preferred_name", "--intake-field", "pronouns", "--intake-field", "grade_level",
)  # fmt: skip


class Narrator:
    """Prints the story: step titles, explanations, commands and key facts."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def title(self, text: str) -> None:
        self.echo("")
        self.echo(text)
        self.echo("=" * len(text))

    def explain(self, text: str) -> None:
        self.echo(textwrap.fill(" ".join(text.split()), WIDTH, initial_indent="  ",
                                subsequent_indent="  "))  # fmt: skip

    def command(self, node: DemoNode, arguments: tuple[str, ...]) -> None:
        self.echo(f"  [{node.name}] $ exchange-node {shlex.join(arguments)}")

    def fact(self, label: str, value: object) -> None:
        self.echo(f"    {label + ':':<28} {value}")

    def block(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            self.echo(f"    | {line}")


@dataclass
class Demo:
    """The three nodes, the narrator, and what the steps learn on the way."""

    community: DemoNode
    clinic: DemoNode
    school: DemoNode
    say: Narrator
    #: Start the servers in their own sessions, to outlive the demo (``--keep``).
    detached: bool = False
    clinic_service: str = ""
    school_service: str = ""
    referral_id: str = ""
    #: The web app's accounts on each node, by node key.
    accounts: dict[str, list[Account]] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[DemoNode, DemoNode, DemoNode]:
        return self.community, self.clinic, self.school

    def run(self, node: DemoNode, *arguments: str) -> str:
        self.say.command(node, arguments)
        return node.run(*arguments)

    def json(self, node: DemoNode, *arguments: str) -> Any:
        self.say.command(node, (*arguments, "--json"))
        return node.json(*arguments)

    def side_by_side(self, *calls: tuple[DemoNode, tuple[str, ...]]) -> list[str]:
        """Run commands on different nodes at the same time; their outputs, in order."""
        for node, arguments in calls:
            self.say.command(node, arguments)
        return run_side_by_side(*calls)


def init_nodes(demo: Demo) -> None:
    demo.say.explain(
        """Each organization runs its own node: its own database, its own keys. There is no
        central server; a person's data lives only with the organizations they agreed to."""
    )
    for node in demo.nodes:
        demo.say.command(node, node.init_arguments())
    initialize_side_by_side(*demo.nodes)
    for node in demo.nodes:
        demo.say.fact(f"{node.name} thumbprint", node.thumbprint)
    demo.say.explain(
        """A thumbprint is the fingerprint of a node's signing key. Administrators tell each
        other their thumbprints out of band (by phone, in person), so nobody in between can
        pretend to be the other organization."""
    )
    for node in demo.nodes:
        demo.say.command(node, ("serve", "--port", str(node.port)))
        node.start(detached=demo.detached)
    for node in demo.nodes:
        node.wait_until_ready()
    for node in demo.nodes:
        demo.say.fact(node.name, f"serving {node.url}")


def create_accounts(demo: Demo) -> None:
    demo.say.explain(
        """People use the web app each node serves, in English or Arabic: volunteers refer,
        intake staff answer referrals, administrators look after peers, users and keys. Each
        node has its own accounts; each account here gets a random password."""
    )
    wanted = [(node, ACCOUNTS[node.key]) for node in demo.nodes]
    for node, pairs in wanted:
        for email, role in pairs:
            demo.say.command(node, account_arguments(email, role))
    added = add_accounts_side_by_side(*wanted)
    for node, accounts in zip(demo.nodes, added, strict=True):
        demo.accounts[node.key] = accounts
        for account in accounts:
            demo.say.fact(node.name, f"{account.email} ({account.role})")
    if demo.detached:
        demo.say.explain("Their passwords are printed at the end, with where to sign in.")
    else:
        demo.say.explain(
            """To sign in with them in a browser afterwards, run 'exchange-node demo --keep':
            it leaves the nodes running and prints the passwords."""
        )


def peer_nodes(demo: Demo) -> None:
    demo.say.explain(
        """The youth network peers with the clinic and with the school. One side adds the
        other with the thumbprint it was told; the other side accepts with the first one's
        thumbprint. Only trusted peers can see capacity or exchange referrals."""
    )
    community, clinic, school = demo.nodes
    accept = ("peer", "accept", community.url, "--thumbprint", community.thumbprint)
    demo.run(community, "peer", "add", clinic.url, "--thumbprint", clinic.thumbprint)
    demo.side_by_side(
        (clinic, accept),
        (community, ("peer", "add", school.url, "--thumbprint", school.thumbprint)),
    )
    demo.run(school, *accept)
    for peer in demo.json(community, "peer", "list"):
        demo.say.fact(str(peer["organization"]), f"{peer['status']} ({peer['entity_id']})")


def publish_services(demo: Demo) -> None:
    demo.say.explain(
        """The clinic and the school describe a service each (an Open Referral HSDS record)
        and say whether they can take people now, and which details a referral must carry:
        nothing more than these fields can ever be sent to them."""
    )
    added = demo.side_by_side(
        (demo.clinic, ("service", "add", *CLINIC_SERVICE, "--json")),
        (demo.school, ("service", "add", *SCHOOL_SERVICE, "--json")),
    )
    demo.clinic_service, demo.school_service = (
        _service_id(node, output) for node, output in zip(demo.nodes[1:], added, strict=True)
    )
    demo.side_by_side(
        (demo.clinic, ("capacity", "set", demo.clinic_service, *CLINIC_CAPACITY)),
        (demo.school, ("capacity", "set", demo.school_service, *SCHOOL_CAPACITY)),
    )
    demo.say.fact("Riverside Clinic service", demo.clinic_service)
    demo.say.fact("Northside School service", demo.school_service)


def search_directory(demo: Demo) -> None:
    demo.say.explain(
        """The youth network fetches its peers' signed capacity documents and searches them
        on its own node: the search itself is never sent to anyone, so no peer learns what a
        young person was looking for."""
    )
    demo.run(demo.community, "directory", "sync")
    results = demo.json(demo.community, "directory", "search", "--affirming", "--age", "16")
    found = results.get("results", [])
    for result in found:
        capacity = result["capacity"]
        wait = capacity.get("wait_days")
        demo.say.fact(
            f"{result['peer']['organization']}",
            f"{result['service']['name']}: {capacity['status']}"
            f"{'' if wait is None else f', wait {wait} days'}, "
            f"{'accepting' if capacity['accepting_referrals'] else 'not accepting'} referrals, "
            f"{_verified(result.get('verified_days_ago'))}",
        )
        demo.say.fact("  asks for", ", ".join(capacity.get("intake_fields", [])) or "(nothing)")
    services = {result["service"]["id"] for result in found}
    if demo.clinic_service not in services or demo.school_service not in services:
        raise DemoError("the search did not find both services", node=demo.community)


def send_referral(demo: Demo) -> None:
    demo.say.explain(
        """Sam, 16, agrees to be referred to the clinic's drop-in. A volunteer records Sam's
        consent: to whom, for what, which kinds of data (identity, contact, and, listed on its
        own because it is sensitive, gender identity), how it was given and until when. The
        referral carries only the fields the clinic asked for, plus how Sam may safely be
        contacted. It is signed by the youth network and encrypted so that only the clinic
        can read it."""
    )
    created = demo.json(
        demo.community, "referral", "create", "--peer", demo.clinic.url,
        "--service", demo.clinic_service,
        *(f"--field={name}={value}" for name, value in PERSON.items()),
        "--consent-category", "identity", "--consent-category", "contact",
        "--consent-category", "gender_identity",
        "--purpose", "Referral to the youth sexual health drop-in, and follow-up on its outcome.",
        "--given-by", "self", "--method", "verbal", "--captured-by", "staff-0042",
        "--expires-days", "90", "--channel", "sms", "--channel", "phone-call", "--no-voicemail",
        "--do-not-disclose", "gender identity", "--window", "mon-fri=15:30-18:00",
        "--time-zone", "Europe/London",
        "--contact-notes", "Shares a phone with family; text first and wait for a reply.",
    )  # fmt: skip
    demo.referral_id = str(created["referral_id"])
    demo.say.fact("Referral id", demo.referral_id)
    demo.say.fact("Consent receipt code", created.get("consent_code"))
    demo.say.fact("Status", created.get("status"))
    demo.say.explain(
        """Sam gets a consent receipt: what was shared with whom, and how to take it back.
        The code is all Sam needs to withdraw consent later."""
    )
    demo.say.block(demo.run(demo.community, "referral", "receipt", demo.referral_id))


def await_delivery(demo: Demo) -> None:
    demo.say.explain(
        """The referral waits in the youth network's outbox until the clinic's node confirms
        it with a signed receipt; if the clinic were offline, it would be retried."""
    )
    elapsed = _watch(
        demo, lambda shown: delivery_state(shown) == "delivered", "the clinic's receipt"
    )
    demo.say.fact("Delivery", f"delivered, receipt signed by the clinic, after {elapsed:.1f} s")


def close_the_loop(demo: Demo) -> None:
    demo.say.explain(
        """At the clinic, intake staff see the new referral. Only the clinic's node can open
        Sam's details: they were encrypted for it alone. Opening them is itself recorded in
        the clinic's audit log."""
    )
    for row in demo.json(demo.clinic, "referral", "list", "--role", "received"):
        demo.say.fact("Incoming referral", f"{row['referral_id']} ({row['status']})")
    demo.say.block(demo.run(demo.clinic, "referral", "show", demo.referral_id, "--personal"))
    demo.say.explain(
        """The clinic accepts the referral, sees Sam, and completes it. Each change travels
        back to the youth network, so the volunteer knows Sam was not left waiting."""
    )
    for status in ("accepted", "in-progress", "completed"):
        demo.run(demo.clinic, "referral", "update", demo.referral_id, "--status", status)
        elapsed = _watch(demo, _has_status(status), f"the status {status!r}")
        demo.say.fact("Youth network sees", f"{status} (arrived in {elapsed:.1f} s)")
    demo.say.explain("What the volunteer at the youth network sees, with the whole timeline:")
    demo.say.block(demo.run(demo.community, "referral", "show", demo.referral_id))


def withdraw_consent(demo: Demo) -> None:
    demo.say.explain(
        """Later Sam withdraws consent. The youth network deletes its own copy of Sam's
        details at once and tells the clinic, which deletes its copy and answers with a
        signed deletion receipt. Both keep only a tombstone of ids and statuses."""
    )
    demo.run(demo.community, "referral", "withdraw", demo.referral_id)
    _watch(demo, lambda shown: deleted_at_peer(shown) is not None, "the deletion receipt")
    when = deleted_at_peer(show_referral(demo.community, demo.referral_id))
    demo.say.fact("Deletion receipt", f"Riverside Clinic deleted Sam's data at {when}")
    demo.say.explain("The clinic's referral now, even asking for personal data:")
    tombstone = demo.run(demo.clinic, "referral", "show", demo.referral_id, "--personal")
    demo.say.block(tombstone)
    left = [name for name, value in PERSON.items() if value in tombstone]
    if left:
        raise DemoError(f"the clinic still shows {', '.join(left)}", node=demo.clinic)
    demo.say.explain("Checked: Sam's name, phone number and pronouns are gone from the clinic.")


def verify_audit_logs(demo: Demo) -> None:
    demo.say.explain(
        """Every node kept a hash-chained audit log of what happened (identifiers and actions,
        never personal data). Changing, removing or reordering an entry breaks the chain."""
    )
    printed = demo.side_by_side(*((node, ("audit", "verify")) for node in demo.nodes))
    for node, output in zip(demo.nodes, printed, strict=True):
        demo.say.fact(node.name, output.strip())


#: (title, step), in order; starting and stopping the nodes are added by exchange_node.demo.
STEPS: tuple[tuple[str, Callable[[Demo], None]], ...] = (
    ("Create and start three nodes", init_nodes),
    ("Create sign-in accounts for the web app", create_accounts),
    ("Peer them", peer_nodes),
    ("Publish services and capacity", publish_services),
    ("Search the directory", search_directory),
    ("Send a consented referral", send_referral),
    ("Deliver it", await_delivery),
    ("Close the loop", close_the_loop),
    ("Withdraw consent", withdraw_consent),
    ("Verify the audit logs", verify_audit_logs),
)


def _service_id(node: DemoNode, output: str) -> str:
    try:
        return str(json.loads(output)["service"]["id"])
    except (ValueError, KeyError, TypeError) as e:
        raise DemoError("'service add --json' printed no service id", node=node) from e


def _verified(days_ago: int | None) -> str:
    if days_ago is None:
        return "never verified"
    return "verified today" if days_ago == 0 else f"verified {days_ago} days ago"


def _has_status(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda shown: shown.get("status") == status


def _watch(demo: Demo, done: Callable[[dict[str, Any]], bool], what: str) -> float:
    """Wait until the youth network's referral satisfies ``done``; the seconds it took.

    Raises:
        DemoError: a message to the clinic failed for good, or nothing came in time.
    """
    started = time.monotonic()

    def check() -> bool | None:
        shown = show_referral(demo.community, demo.referral_id)
        failed = failed_message(shown)
        if failed is not None:
            raise DemoError(f"a message to the clinic failed ({failed})", node=demo.clinic)
        return True if done(shown) else None

    wait_for(check, DELIVERY_SECONDS, what, interval=0.1)
    return time.monotonic() - started
