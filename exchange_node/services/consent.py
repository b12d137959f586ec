"""The consent receipt a person is given when they are referred (issue 5 item 1).

It says, in plain words, what the person agreed to: which organization shares which
kinds of data (sensitive ones named one by one) with which organization and service,
for what purpose, until when, how the consent was recorded and by which staff
reference, and how to withdraw, quoting the receipt code. It names the kinds of data,
never the data itself (no name, phone number or notes). After the data has been
purged only a short receipt remains: the consent record was sealed with the data.

:func:`open_receipt` gathers the facts as data (:class:`ConsentReceipt`), opening the
sealed consent record and auditing that; :func:`consent_receipt` renders them in
English as plain text or as a small printable HTML page (no scripts, no external
resources), for the command line and the API. The web app renders the same facts in
the reader's language. This module stores nothing but the audit entry.
"""

from __future__ import annotations

import html as html_escape
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from exchange_node.db.models import Peer, Referral, ReferralRole
from exchange_node.errors import InvalidRequestError
from exchange_node.node import Node
from exchange_node.protocol.intake import SENSITIVE_CATEGORIES
from exchange_node.protocol.messages import parse_timestamp
from exchange_node.services import audit, referral_store

#: Plain-language names of the data categories (SPEC 5.4), as a person reads them.
CATEGORY_LABELS = {
    "identity": "your name",
    "contact": "how to contact you (phone, e-mail or address)",
    "demographics": "your age or date of birth",
    "language": "the language you prefer",
    "needs": "a summary of what you need help with",
    "education": "your school and year",
    "housing": "your housing situation",
    "legal": "a summary of your legal matter",
    "gender_identity": "your gender identity or pronouns",
    "sexual_orientation": "your sexual orientation",
    "health": "a summary of your health",
    "immigration_status": "your immigration status",
}
METHOD_LABELS = {"verbal": "spoken (verbal)", "written": "in writing", "digital": "digitally"}
GIVER_LABELS = {
    "self": "you",
    "parent-or-guardian": "your parent or guardian",
    "legal-representative": "your legal representative",
}


@dataclass(frozen=True)
class ConsentGiven:
    """What the sealed consent record says: what is shared, why, and who, how and when."""

    #: Data category codes (SPEC 5.4), in the order consented.
    categories: tuple[str, ...]
    purpose: str
    #: Codes: ``self``, ``parent-or-guardian``, ``legal-representative``.
    given_by: str
    #: Codes: ``verbal``, ``written``, ``digital``.
    method: str
    captured_at: int
    #: The staff member's opaque reference (never a name or e-mail address).
    captured_by: str

    @property
    def sensitive(self) -> tuple[str, ...]:
        """The categories the person agreed to share one by one (SPEC 5.4)."""
        return tuple(name for name in self.categories if name in SENSITIVE_CATEGORIES)


@dataclass(frozen=True)
class ConsentReceipt:
    """The facts of a consent receipt; the renderers put them into words."""

    code: str
    #: The organization that shares (this node's).
    organization: str
    peer_organization: str
    peer_entity_id: str
    #: The service's name (its id when the name is unknown).
    service: str
    expires_at: int
    #: To withdraw, the person contacts this organization, quoting :attr:`code`.
    withdraw_contact: str
    #: The consent record; None once the data was purged (it was sealed with the data).
    consent: ConsentGiven | None
    withdrawn_at: int | None
    #: When this node deleted the data, and when the peer confirmed deleting its copy.
    purged_at: int | None
    peer_deleted_at: int | None


@dataclass(frozen=True)
class _Section:
    heading: str
    lines: Sequence[str]


def open_receipt(
    node: Node, session: Session, referral: Referral, *, actor: str, now: int
) -> ConsentReceipt:
    """The facts of the consent receipt of a referral this node sent.

    It opens the sealed consent record (which sensitive categories were shared, and why),
    so this is audited as ``referral.consent_receipt_viewed`` by ``actor``.

    Raises:
        InvalidRequestError: a referral this node received (the referrer gives receipts).
        DataKeyError: the sealed consent record does not open.
    """
    if referral.role != ReferralRole.SENT or referral.consent_code is None:
        raise InvalidRequestError(
            "consent receipts are given by the organization that made the referral",
            {"/referral": "received, not sent, by this node"},
        )
    peer = session.get_one(Peer, referral.peer_id)
    data = referral_store.open_personal_data(node.data_key, referral)
    given = None
    if data is not None:
        record = data.consent
        given = ConsentGiven(
            categories=tuple(str(name) for name in record["data_categories"]),
            purpose=str(record["purpose"]),
            given_by=str(record["given_by"]),
            method=str(record["method"]),
            captured_at=parse_timestamp(str(record["captured_at"]), "/consent/captured_at"),
            captured_by=str(record["captured_by"]),
        )
    audit.record(
        session,
        actor=actor,
        action="referral.consent_receipt_viewed",
        subject=referral.referral_id,
        now=now,
    )
    return ConsentReceipt(
        code=referral.consent_code,
        organization=node.settings.name,
        peer_organization=peer.organization_name,
        peer_entity_id=peer.entity_id,
        service=referral.service_name or referral.service_id,
        expires_at=referral.consent_expires_at,
        withdraw_contact=node.settings.name,
        consent=given,
        withdrawn_at=referral.withdrawn_at,
        purged_at=referral.purged_at,
        peer_deleted_at=referral.peer_deleted_at,
    )


def consent_receipt(
    node: Node, session: Session, referral: Referral, *, actor: str, now: int, html: bool = False
) -> str:
    """The consent receipt of a referral this node sent, in English, as text or as an HTML
    page (audited, as :func:`open_receipt`).

    Raises:
        InvalidRequestError: a referral this node received (the referrer gives receipts).
        DataKeyError: the sealed consent record does not open.
    """
    receipt = open_receipt(node, session, referral, actor=actor, now=now)
    return receipt_html(receipt) if html else receipt_text(receipt)


def receipt_text(receipt: ConsentReceipt) -> str:
    """The receipt as plain text (English)."""
    title = _title(receipt)
    lines = [title, "=" * len(title), ""]
    for section in _sections(receipt):
        lines += [f"{section.heading}:", *(f"  {line}" for line in section.lines), ""]
    return "\n".join(lines)


def receipt_html(receipt: ConsentReceipt) -> str:
    """The receipt as a self-contained printable HTML page (English)."""
    escape = html_escape.escape
    title = _title(receipt)
    body = []
    for section in _sections(receipt):
        items = section.lines
        if items and all(line.startswith("- ") for line in items):
            inner = "".join(f"<li>{escape(line[2:])}</li>" for line in items)
            content = f"<ul>{inner}</ul>"
        else:
            content = "".join(f"<p>{escape(line)}</p>" for line in items)
        body.append(f"<section><h2>{escape(section.heading)}</h2>{content}</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _title(receipt: ConsentReceipt) -> str:
    return f"Consent receipt {receipt.code}"


def _sections(receipt: ConsentReceipt) -> list[_Section]:
    if receipt.consent is None:
        return _purged_sections(receipt)
    given = receipt.consent
    sensitive = " (sensitive: you agreed to share this one specifically)"
    shared = [
        CATEGORY_LABELS.get(name, name) + (sensitive if name in given.sensitive else "")
        for name in given.categories
    ] or ["no personal details, only that you were referred"]
    method = METHOD_LABELS.get(given.method, given.method)
    giver = GIVER_LABELS.get(given.given_by, given.given_by)
    return [
        _Section("Receipt code", [receipt.code, "Keep this code."]),
        _Section(
            "Who shares, with whom",
            [
                f"{receipt.organization} shares your information with "
                f"{receipt.peer_organization} ({receipt.peer_entity_id}),",
                f"for the service: {receipt.service}.",
            ],
        ),
        _Section("What is shared", [f"- {line}" for line in shared]),
        _Section("Why", [given.purpose]),
        _Section(
            "Until when",
            [f"Until {_date(receipt.expires_at)}, unless you withdraw sooner."],
        ),
        _Section(
            "How consent was given",
            [
                f"Given by {giver}, {method}, on {_date(given.captured_at)}.",
                f"Recorded by staff member reference {given.captured_by}.",
            ],
        ),
        _Section(
            "How to withdraw",
            [
                f"Contact {receipt.withdraw_contact} at any time and quote the code "
                f"{receipt.code}.",
                "Your information is then deleted at both organizations; we can tell you when.",
            ],
        ),
    ]


def _purged_sections(receipt: ConsentReceipt) -> list[_Section]:
    peer = receipt.peer_organization
    if receipt.withdrawn_at is not None:
        what = [f"You withdrew your consent on {_date(receipt.withdrawn_at)}."]
    else:
        what = ["The time for keeping your information ended."]
    what.append(
        f"{receipt.organization} deleted the information it shared on {_date(receipt.purged_at)}."
    )
    if receipt.peer_deleted_at is not None:
        what.append(f"{peer} confirmed deleting it on {_date(receipt.peer_deleted_at)}.")
    elif receipt.withdrawn_at is not None:
        what.append(f"{peer} has not yet confirmed deleting it.")
    return [
        _Section("Receipt code", [receipt.code]),
        _Section(
            "Shared with",
            [f"{peer} ({receipt.peer_entity_id}), for: {receipt.service}."],
        ),
        _Section("Deleted", what),
    ]


def _date(value: int | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromtimestamp(value, UTC)
    return f"{moment.day} {moment:%B %Y}, {moment:%H:%M} UTC"


_STYLE = (
    "body{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.5}"
    "h2{font-size:1.1em;margin-bottom:.2em}@media print{body{margin:0}}"
)


__all__ = [
    "CATEGORY_LABELS",
    "GIVER_LABELS",
    "METHOD_LABELS",
    "ConsentGiven",
    "ConsentReceipt",
    "consent_receipt",
    "open_receipt",
    "receipt_html",
    "receipt_text",
]
