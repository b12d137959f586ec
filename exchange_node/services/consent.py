"""The consent receipt a person is given when they are referred (issue 5 item 1).

It says, in plain words, what the person agreed to: which organization shares which
kinds of data (sensitive ones named one by one) with which organization and service,
for what purpose, until when, how the consent was recorded and by which staff
reference, and how to withdraw, quoting the receipt code. It names the kinds of data,
never the data itself (no name, phone number or notes). After the data has been
purged only a short receipt remains: the consent record was sealed with the data.

Rendered as plain text, or as a small printable HTML page (no scripts, no external
resources). This module stores nothing.
"""

from __future__ import annotations

import html as html_escape
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
class _Section:
    heading: str
    lines: Sequence[str]


def consent_receipt(
    node: Node, session: Session, referral: Referral, *, actor: str, now: int, html: bool = False
) -> str:
    """The consent receipt of a referral this node sent, as text or as an HTML page.

    It opens the sealed consent record (which sensitive categories were shared, and why),
    so showing it is audited as ``referral.consent_receipt_viewed`` by ``actor``.

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
    if data is None:
        sections = _purged_sections(node, peer, referral)
    else:
        sections = _sections(node, peer, referral, data.consent)
    audit.record(
        session,
        actor=actor,
        action="referral.consent_receipt_viewed",
        subject=referral.referral_id,
        now=now,
    )
    title = f"Consent receipt {referral.consent_code}"
    return _html(title, sections) if html else _text(title, sections)


def _sections(
    node: Node, peer: Peer, referral: Referral, record: Mapping[str, Any]
) -> list[_Section]:
    sensitive = " (sensitive: you agreed to share this one specifically)"
    shared = [
        CATEGORY_LABELS.get(name, name) + (sensitive if name in SENSITIVE_CATEGORIES else "")
        for name in record["data_categories"]
    ] or ["no personal details, only that you were referred"]
    captured_at = _date(parse_timestamp(str(record["captured_at"]), "/consent/captured_at"))
    method = METHOD_LABELS.get(str(record["method"]), str(record["method"]))
    giver = GIVER_LABELS.get(str(record["given_by"]), str(record["given_by"]))
    return [
        _Section("Receipt code", [str(referral.consent_code), "Keep this code."]),
        _Section(
            "Who shares, with whom",
            [
                f"{node.settings.name} shares your information with "
                f"{peer.organization_name} ({peer.entity_id}),",
                f"for the service: {referral.service_name or referral.service_id}.",
            ],
        ),
        _Section("What is shared", [f"- {line}" for line in shared]),
        _Section("Why", [str(record["purpose"])]),
        _Section(
            "Until when",
            [f"Until {_date(referral.consent_expires_at)}, unless you withdraw sooner."],
        ),
        _Section(
            "How consent was given",
            [
                f"Given by {giver}, {method}, on {captured_at}.",
                f"Recorded by staff member reference {record['captured_by']}.",
            ],
        ),
        _Section("How to withdraw", _withdraw_lines(node, referral)),
    ]


def _withdraw_lines(node: Node, referral: Referral) -> list[str]:
    return [
        f"Contact {node.settings.name} at any time and quote the code {referral.consent_code}.",
        "Your information is then deleted at both organizations; we can tell you when.",
    ]


def _purged_sections(node: Node, peer: Peer, referral: Referral) -> list[_Section]:
    deleted = _date(referral.purged_at)
    if referral.withdrawn_at is not None:
        what = [f"You withdrew your consent on {_date(referral.withdrawn_at)}."]
    else:
        what = ["The time for keeping your information ended."]
    what.append(f"{node.settings.name} deleted the information it shared on {deleted}.")
    if referral.peer_deleted_at is not None:
        what.append(
            f"{peer.organization_name} confirmed deleting it on {_date(referral.peer_deleted_at)}."
        )
    elif referral.withdrawn_at is not None:
        what.append(f"{peer.organization_name} has not yet confirmed deleting it.")
    return [
        _Section("Receipt code", [str(referral.consent_code)]),
        _Section(
            "Shared with",
            [f"{peer.organization_name} ({peer.entity_id}), for: {referral.service_name}."],
        ),
        _Section("Deleted", what),
    ]


def _date(value: int | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromtimestamp(value, UTC)
    return f"{moment.day} {moment:%B %Y}, {moment:%H:%M} UTC"


def _text(title: str, sections: Sequence[_Section]) -> str:
    lines = [title, "=" * len(title), ""]
    for section in sections:
        lines += [f"{section.heading}:", *(f"  {line}" for line in section.lines), ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.5}"
    "h2{font-size:1.1em;margin-bottom:.2em}@media print{body{margin:0}}"
)


def _html(title: str, sections: Sequence[_Section]) -> str:
    escape = html_escape.escape
    body = []
    for section in sections:
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


__all__ = ["CATEGORY_LABELS", "consent_receipt"]
