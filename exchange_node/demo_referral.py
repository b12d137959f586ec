"""The demo's referral: the (invented) person it is about, and watching it from the outside.

While the demo waits for a message to arrive, it reads the node's own database through
the referral services (what ``referral show --json`` prints, without personal data)
rather than starting a command every few tenths of a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchange_node.demo_nodes import DEMO_ENVIRONMENT, DemoError, DemoNode
from exchange_node.errors import ExchangeError
from exchange_node.node import Node
from exchange_node.protocol.errors import ProtocolError
from exchange_node.services import referrals
from exchange_node.settings import load_settings

#: The person referred: invented, with a phone number from the UK's range kept for drama.
PERSON: Mapping[str, str] = {
    "given_name": "Sam",
    "phone": "+44 7700 900123",
    "pronouns": "they/them",
}


def show_referral(node: DemoNode, referral_id: str) -> dict[str, Any]:
    """What ``referral show ID --json`` prints on ``node`` (no personal data).

    Raises:
        DemoError: the node cannot be opened or does not hold the referral.
    """
    try:
        opened = Node.open(load_settings(node.home, environ=DEMO_ENVIRONMENT))
    except (ExchangeError, ProtocolError) as e:
        raise DemoError(f"cannot open {node.name}'s node: {e.detail}", node=node) from e
    try:
        with opened.database.session() as session:
            found = referrals.find_referral(session, referral_id)
            return referrals.describe(opened, found, personal=False)
    except (ExchangeError, ProtocolError) as e:
        raise DemoError(f"{node.name} cannot show the referral: {e.detail}", node=node) from e
    finally:
        opened.database.dispose()


def delivery_state(shown: Mapping[str, Any]) -> str | None:
    """The state of the referral message in the sender's outbox (``delivered`` once received)."""
    delivery = shown.get("delivery")
    return None if not isinstance(delivery, Mapping) else str(delivery.get("state"))


def failed_message(shown: Mapping[str, Any]) -> str | None:
    """The first message to the peer that failed for good, as ``type: code``, if any."""
    for message in shown.get("failed_messages") or ():
        return f"{message.get('message_type')}: {message.get('last_error_code')}"
    return None


def deleted_at_peer(shown: Mapping[str, Any]) -> str | None:
    """When the peer deleted the data, from its signed deletion receipt, if one came."""
    deleted = shown.get("peer_deleted_at")
    return None if deleted is None else str(deleted)
