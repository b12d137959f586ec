from __future__ import annotations

import pytest

from exchange_node.protocol.errors import IllegalTransitionError
from exchange_node.protocol.states import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    ReferralStatus,
    Side,
    allowed_transitions,
    check_transition,
)

S = ReferralStatus

# The DESIGN.md table, written out independently of the implementation's.
EXPECTED = {
    (None, S.REQUESTED): Side.SENDER,
    (S.REQUESTED, S.ACCEPTED): Side.RECEIVER,
    (S.REQUESTED, S.REJECTED): Side.RECEIVER,
    (S.REQUESTED, S.CANCELLED): Side.SENDER,
    (S.ACCEPTED, S.IN_PROGRESS): Side.RECEIVER,
    (S.ACCEPTED, S.ON_HOLD): Side.RECEIVER,
    (S.ACCEPTED, S.CANCELLED): Side.SENDER,
    (S.ACCEPTED, S.COMPLETED): Side.RECEIVER,
    (S.ACCEPTED, S.FAILED): Side.RECEIVER,
    (S.IN_PROGRESS, S.ON_HOLD): Side.RECEIVER,
    (S.ON_HOLD, S.IN_PROGRESS): Side.RECEIVER,
    (S.IN_PROGRESS, S.COMPLETED): Side.RECEIVER,
    (S.IN_PROGRESS, S.FAILED): Side.RECEIVER,
    (S.IN_PROGRESS, S.CANCELLED): Side.SENDER,
    (S.ON_HOLD, S.COMPLETED): Side.RECEIVER,
    (S.ON_HOLD, S.FAILED): Side.RECEIVER,
    (S.ON_HOLD, S.CANCELLED): Side.SENDER,
} | {(s, S.ENTERED_IN_ERROR): Side.RECEIVER for s in S if s is not S.ENTERED_IN_ERROR}


@pytest.mark.parametrize("current", [None, *S])
@pytest.mark.parametrize("new", list(S))
@pytest.mark.parametrize("side", list(Side))
def test_every_pair_matches_the_design(current: S | None, new: S, side: Side) -> None:
    owner = EXPECTED.get((current, new))
    if owner is side:
        assert check_transition(current, new, side) is side
        assert new in allowed_transitions(current, side)
    else:
        with pytest.raises(IllegalTransitionError) as caught:
            check_transition(current, new, side)
        assert caught.value.allowed == allowed_transitions(current, side)
        assert new not in caught.value.allowed


def test_error_names_the_owner_and_the_choices() -> None:
    with pytest.raises(IllegalTransitionError) as caught:
        check_transition("requested", "accepted", "sender")
    assert "only the receiver" in str(caught.value)
    assert caught.value.allowed == ("cancelled",)
    problem = caught.value.to_problem()
    assert problem["code"] == "illegal_transition"
    assert problem["allowed"] == ["cancelled"]
    assert problem["status"] == 409


def test_terminal_statuses_only_lead_to_entered_in_error() -> None:
    for status in TERMINAL_STATUSES:
        assert set(TRANSITIONS[status]) <= {S.ENTERED_IN_ERROR}


def test_unknown_status_is_a_protocol_error() -> None:
    with pytest.raises(IllegalTransitionError, match="unknown"):
        check_transition("requested", "approved", "receiver")
    with pytest.raises(IllegalTransitionError, match="unknown"):
        allowed_transitions("approved", "receiver")
