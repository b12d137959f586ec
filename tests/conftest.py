"""Shared fixtures: example nodes with fresh keys, and a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from exchange_node.protocol.keys import NodeKey, generate_key

NOW = 1_798_761_600  # 2027-01-01T00:00:00Z


@dataclass
class ExampleNode:
    """A node's identity for protocol tests: entity id and fresh keys."""

    entity_id: str
    signing_key: NodeKey = field(default_factory=lambda: generate_key("sig"))
    next_signing_key: NodeKey = field(default_factory=lambda: generate_key("sig"))
    encryption_key: NodeKey = field(default_factory=lambda: generate_key("enc"))

    @property
    def public_signing_keys(self) -> list[NodeKey]:
        return [self.signing_key.public(), self.next_signing_key.public()]


@pytest.fixture
def now() -> int:
    return NOW


@pytest.fixture
def make_node() -> Callable[[str], ExampleNode]:
    def make(name: str) -> ExampleNode:
        return ExampleNode(f"https://{name}.example")

    return make


@pytest.fixture
def community(make_node: Callable[[str], ExampleNode]) -> ExampleNode:
    return make_node("community")


@pytest.fixture
def clinic(make_node: Callable[[str], ExampleNode]) -> ExampleNode:
    return make_node("clinic")


@pytest.fixture
def school(make_node: Callable[[str], ExampleNode]) -> ExampleNode:
    return make_node("school")
