"""The whole loop between two nodes: refer, deliver, accept, complete, withdraw, delete.

The community refers a person to the clinic; each message goes through the outbox,
delivery and the peer's inbox (in memory, through the real apps); each side's view
of the referral is checked after every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchange_node.db.models import Referral
from exchange_node.services.delivery import deliver_until_idle
from exchange_node.services.referrals import (
    describe,
    find_referral,
    list_referrals,
    update_status,
    withdraw,
)
from tests.node.test_referrals_at_rest import SECRETS, stored_bytes
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    GIVEN_NAME,
    PHONE,
    create,
    draft,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]


def shown(test_node: TestNode, referral_id: str, *, personal: bool = False) -> dict[str, Any]:
    with test_node.node.database.session() as session:
        return describe(test_node.node, find_referral(session, referral_id), personal=personal)


def deliver(test_node: TestNode, expected: int) -> None:
    report = deliver_until_idle(test_node.node)  # messages about one referral go in order
    assert (report.delivered, report.failed) == (expected, 0), report


def change(test_node: TestNode, referral_id: str, status: str, **options: Any) -> None:
    node = test_node.node
    with node.database.session() as session:
        update_status(
            node, session, referral_id, status=status, actor="cli", now=node.now(), **options
        )


def statuses(view: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (event["status"], event["side"], event["sequence"])
        for event in view["timeline"]
        if event["kind"] == "status"
    ]


def test_refer_accept_complete_withdraw_and_see_the_deletion(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = create(community, draft(clinic, service_id)).referral_id
    deliver(community, 1)
    assert shown(community, referral_id)["delivery"]["state"] == "delivered"
    with clinic.node.database.session() as session:
        [received] = list_referrals(session, role="received")
        assert received.referral_id == referral_id
    at_clinic = shown(clinic, referral_id, personal=True)
    assert at_clinic["person"] == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert at_clinic["safe_contact"]["notes"] == CONTACT_NOTES
    for secret in SECRETS:
        assert secret.encode() not in stored_bytes(clinic)

    change(clinic, referral_id, "accepted", note="First appointment on Tuesday")
    deliver(clinic, 1)
    at_community = shown(community, referral_id, personal=True)
    assert at_community["status"] == "accepted"
    assert statuses(at_community) == [("requested", "sender", None), ("accepted", "receiver", 1)]
    assert at_community["timeline"][-1]["note"] == "First appointment on Tuesday"

    change(clinic, referral_id, "in-progress")
    change(clinic, referral_id, "completed")
    deliver(clinic, 2)
    at_community = shown(community, referral_id)
    assert at_community["status"] == "completed"
    assert at_community["closed_at"] is not None
    assert [s for s, _, _ in statuses(at_community)][-2:] == ["in-progress", "completed"]

    with community.node.database.session() as session:
        withdraw(community.node, session, referral_id, actor="cli", now=community.node.now())
    assert shown(community, referral_id, personal=True)["person"] is None
    deliver(community, 1)  # the consent-withdrawal (completed is final: no cancel first)
    at_clinic = shown(clinic, referral_id, personal=True)
    assert (at_clinic["person"], at_clinic["purge_reason"]) == (None, "withdrawn")
    assert at_clinic["status"] == "completed"
    assert all(event.get("note") is None for event in at_clinic["timeline"])

    deliver(clinic, 1)  # the deletion receipt
    at_community = shown(community, referral_id)
    assert at_community["peer_deleted_at"] is not None
    assert at_community["timeline"][-1]["kind"] == "deleted-at-peer"
    assert [m["state"] for m in at_community["messages"]] == ["delivered", "delivered"]
    with community.node.database.session() as session:
        sent = session.get_one(Referral, find_referral(session, referral_id).id)
        assert sent.sealed is None
