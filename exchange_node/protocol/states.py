"""The referral state machine (after the HL7 SDOH Clinical Care referral Task states).

One table says which status may follow which, and which side (the sending or
the receiving node) may make that change. :func:`check_transition` is the only
question callers ask; it answers with the side or raises an error naming the
changes that *are* allowed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from exchange_node.protocol.errors import IllegalTransitionError


class ReferralStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    ENTERED_IN_ERROR = "entered-in-error"


class Side(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


class ReasonCode(StrEnum):
    NO_CAPACITY = "no-capacity"
    NOT_ELIGIBLE = "not-eligible"
    COULD_NOT_CONTACT = "could-not-contact"
    PERSON_DECLINED = "person-declined"
    OTHER = "other"


S = ReferralStatus
_SENDER, _RECEIVER = Side.SENDER, Side.RECEIVER

#: current status (None: the referral does not exist yet) -> {next status: side allowed}.
TRANSITIONS: Final[dict[ReferralStatus | None, dict[ReferralStatus, Side]]] = {
    None: {S.REQUESTED: _SENDER},
    S.REQUESTED: {S.ACCEPTED: _RECEIVER, S.REJECTED: _RECEIVER, S.CANCELLED: _SENDER},
    S.ACCEPTED: {
        S.IN_PROGRESS: _RECEIVER,
        S.ON_HOLD: _RECEIVER,
        S.CANCELLED: _SENDER,
        S.COMPLETED: _RECEIVER,
        S.FAILED: _RECEIVER,
    },
    S.IN_PROGRESS: {
        S.ON_HOLD: _RECEIVER,
        S.COMPLETED: _RECEIVER,
        S.FAILED: _RECEIVER,
        S.CANCELLED: _SENDER,
    },
    S.ON_HOLD: {
        S.IN_PROGRESS: _RECEIVER,
        S.COMPLETED: _RECEIVER,
        S.FAILED: _RECEIVER,
        S.CANCELLED: _SENDER,
    },
}
# Any existing referral may be marked entered-in-error by the receiver, except one already so.
for _current in (*ReferralStatus,):
    if _current is not S.ENTERED_IN_ERROR:
        TRANSITIONS.setdefault(_current, {})[S.ENTERED_IN_ERROR] = _RECEIVER
TRANSITIONS.setdefault(S.ENTERED_IN_ERROR, {})

#: Statuses a referral never leaves (except to entered-in-error).
TERMINAL_STATUSES: Final = frozenset(
    {S.REJECTED, S.CANCELLED, S.COMPLETED, S.FAILED, S.ENTERED_IN_ERROR}
)
#: Statuses whose change must carry a reason code.
REASON_REQUIRED: Final = frozenset({S.REJECTED, S.CANCELLED, S.FAILED})


def allowed_transitions(current: str | None, side: Side | str) -> tuple[str, ...]:
    """The statuses ``side`` may move a referral to from ``current``, in table order."""
    acting = Side(side)
    return tuple(
        status.value
        for status, who in TRANSITIONS.get(_status(current), {}).items()
        if who is acting
    )


def check_transition(current: str | None, new: str, side: Side | str) -> Side:
    """Answer whether ``side`` may move a referral from ``current`` to ``new``.

    ``current`` is ``None`` for a referral not yet created.

    Returns:
        The side that owns this change (equal to ``side``).

    Raises:
        IllegalTransitionError: the change is not in the table, or belongs to the
            other side; ``error.allowed`` lists what ``side`` may do instead.
    """
    acting = Side(side)
    current_status, new_status = _status(current), _parse_status(new)
    owner = TRANSITIONS.get(current_status, {}).get(new_status)
    if owner is acting:
        return owner
    allowed = allowed_transitions(current, acting)
    origin = current_status.value if current_status else "(new)"
    reason = (
        f"only the {owner.value} may change {origin} to {new_status.value}"
        if owner
        else f"{origin} cannot change to {new_status.value}"
    )
    choices = ", ".join(allowed) if allowed else "none"
    raise IllegalTransitionError(f"{reason}; the {acting.value} may choose: {choices}", allowed)


def _status(value: str | None) -> ReferralStatus | None:
    return None if value is None else _parse_status(value)


def _parse_status(value: str) -> ReferralStatus:
    try:
        return ReferralStatus(value)
    except ValueError as e:
        raise IllegalTransitionError(f"unknown referral status {value!r}", ()) from e


__all__ = [
    "REASON_REQUIRED",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "ReasonCode",
    "ReferralStatus",
    "Side",
    "allowed_transitions",
    "check_transition",
]
