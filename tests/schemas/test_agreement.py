"""``jsonschema`` (and ``jsonschema-rs``) and ``wire.py`` give the same verdict on claims.

Valid examples and valid vector claims pass every engine, invalid variants fail every
engine, vector claims marked invalid get one verdict, and random mutations of the valid
examples get the same verdict from all.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.schemas.engines import NAMES, explain, stem, verdicts
from tests.schemas.invalid_examples import INVALID, invalid_cases
from tests.schemas.mutations import mutate
from tests.schemas.valid_examples import BUILT
from tests.schemas.vector_claims import VECTORS

#: Every schema's valid examples: built by hand, then the vector claims marked valid.
VALID_EXAMPLES = {
    name: [*BUILT[name], *((f"vector:{id_}", c) for n, id_, c, ok in VECTORS if n == name and ok)]
    for name in NAMES
}


def test_every_schema_has_valid_and_invalid_examples() -> None:
    assert all(BUILT[name] and INVALID[name][1] for name in NAMES)


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        pytest.param(name, claims, id=f"{stem(name)}:{id_}")
        for name in NAMES
        for id_, claims in VALID_EXAMPLES[name]
    ],
)
def test_valid_example_is_accepted_by_both(name: str, claims: dict[str, Any]) -> None:
    assert all(verdicts(name, claims).values()), explain(name, claims)


@pytest.mark.parametrize(("name", "claims"), list(invalid_cases()))
def test_invalid_variant_is_refused_by_both(name: str, claims: dict[str, Any]) -> None:
    assert not any(verdicts(name, claims).values()), verdicts(name, claims)


@pytest.mark.parametrize(
    ("name", "claims"),
    [pytest.param(n, c, id=f"{stem(n)}:{id_}") for n, id_, c, _ in VECTORS]
    or [pytest.param(None, None, marks=pytest.mark.skip(reason="no vectors with claims"))],
)
def test_vector_claims_get_the_same_verdict(name: str, claims: dict[str, Any]) -> None:
    assert len(set(verdicts(name, claims).values())) == 1, explain(name, claims)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_mutations_get_the_same_verdict(name: str, data: st.DataObject) -> None:
    _, claims = data.draw(st.sampled_from(VALID_EXAMPLES[name]), label="example")
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        claims = mutate(data, claims)
    accepted = verdicts(name, claims)
    event("accepted" if all(accepted.values()) else "refused by one or more")
    assert len(set(accepted.values())) == 1, (accepted, explain(name, claims))
