"""Fixtures for node tests: whole nodes in one process, talking through an in-memory transport.

Each test gets a :class:`Federation` whose nodes share a test clock and a
:class:`~exchange_node.transport.WsgiTransport`, so node-to-node requests go
through the real Flask apps without sockets. Every test runs on SQLite, and
again on PostgreSQL when ``EXCHANGE_TEST_DATABASE_URL`` is set (each node then
gets a schema of its own, dropped after the test). Nodes start from a copy of a
database migrated once per session (tests/node/database_templates.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from exchange_node.db.models import CapacityPublication, Service
from exchange_node.node import Node
from exchange_node.protocol.keys import NodeKey
from exchange_node.services import peers
from exchange_node.services.setup import initialize_node
from exchange_node.settings import IDENTITY, load_settings
from exchange_node.transport import WsgiTransport
from exchange_node.web import create_app
from tests.conftest import NOW
from tests.node.database_templates import PostgresSchemas, SqliteTemplate

POSTGRES_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
NO_POSTGRES = (
    "PostgreSQL tests need EXCHANGE_TEST_DATABASE_URL (.ci/run sets it when a server is up)"
)


@dataclass
class TestClock:
    __test__ = False  # not a test class, despite the name
    """The one clock of a federation; tests move it forward."""

    now: int = NOW

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


@dataclass
class TestNode:
    __test__ = False
    node: Node
    app: Flask

    @property
    def url(self) -> str:
        return self.node.settings.url

    @property
    def signing_key(self) -> NodeKey:
        with self.node.database.session() as session:
            return self.node.ring(session).signing_key

    @property
    def thumbprint(self) -> str:
        return self.signing_key.kid

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def publish(
        self,
        record: Mapping[str, Any] | None = None,
        *,
        status: str = "capacity",
        accepting: bool = True,
        intake_fields: Sequence[str] = ("given_name", "phone"),
        wait_days: int | None = None,
        notes: str | None = None,
        verified_at: int | None = None,
        public: bool = False,
    ) -> str:
        """Store a service (a valid HSDS record) with its capacity, raising the version.

        Goes straight to the tables, so tests of sync and search do not depend on
        the catalog's commands; returns the service id.
        """
        record = dict(record or hsds_service("Counselling"))
        now = self.node.now()
        with self.node.database.session() as session:
            session.add(
                Service(
                    id=record["id"],
                    name=record["name"],
                    record=record,
                    public=public,
                    capacity_status=status,
                    accepting_referrals=accepting,
                    wait_days=wait_days,
                    notes=notes,
                    intake_fields=list(intake_fields),
                    verified_at=verified_at,
                    capacity_updated_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.execute(
                update(CapacityPublication)
                .where(CapacityPublication.id == 1)
                .values(version=CapacityPublication.version + 1)
            )
        return str(record["id"])


def hsds_service(name: str, **members: Any) -> dict[str, Any]:
    """A minimal valid HSDS 3.1 service record with a fresh UUID, plus ``members``."""
    return {"id": str(uuid.uuid4()), "name": name, "status": "active", **members}


@dataclass
class Federation:
    """Nodes created on demand (``add``), peered on demand (``peer``)."""

    home: Path
    database_url: Callable[[str], str]
    clock: TestClock
    transport: WsgiTransport = field(default_factory=WsgiTransport)
    nodes: dict[str, TestNode] = field(default_factory=dict)

    def add(self, name: str, kind: str = "clinic", **settings: object) -> TestNode:
        url = f"https://{name}.example"
        home = self.home / name
        values = {"name": name.title(), "kind": kind, "url": url, "languages": ("en", "ar")}
        values |= {"database_url": self.database_url(name), "key_overlap_seconds": 3600}
        chosen = load_settings(home, environ={}, **(values | settings))
        initialize_node(chosen, self.clock(), (*IDENTITY, "database_url", "key_overlap_seconds"))
        node = Node.open(  # what node.toml keeps, plus the settings it does not
            load_settings(home, environ={}, **settings),
            transport=self.transport,
            clock=self.clock,
        )
        test_node = TestNode(node, create_app(node=node))
        self.transport.apps[url] = test_node.app
        self.nodes[name] = test_node
        return test_node

    def peer(self, first: TestNode, second: TestNode) -> None:
        """``first`` adds ``second`` by thumbprint; ``second`` accepts ``first`` by thumbprint."""
        with first.node.database.session() as session:
            peers.add_peer(first.node, session, second.url, second.thumbprint)
        with second.node.database.session() as session:
            peers.accept_peer(second.node, session, first.url, first.thumbprint)

    def close(self) -> None:
        for test_node in self.nodes.values():
            test_node.node.database.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)),
    ]
)
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("database-template"))


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas | None]:
    """Schemas in the PostgreSQL test database (connected when first used), or None."""
    if not POSTGRES_URL:
        yield None
        return
    schemas = PostgresSchemas(POSTGRES_URL)
    yield schemas
    schemas.close()


@dataclass
class Databases:
    """One test's databases, one per name: a file on SQLite; on PostgreSQL a schema of its
    own in the test database (creating one is far cheaper than creating a database)."""

    kind: str
    directory: Path
    sqlite_template: SqliteTemplate
    postgres_schemas: PostgresSchemas | None
    schemas: list[str] = field(default_factory=list)

    def url(self, name: str, *, migrated: bool) -> str:
        """A new database, empty or as the migrations leave it (copied: see the templates)."""
        if self.kind == "sqlite":
            path = self.directory / f"{name}.db"
            if migrated:
                self.sqlite_template.copy_to(path)
            return f"sqlite:///{path}"
        assert self.postgres_schemas is not None, NO_POSTGRES
        schema = self.postgres_schemas.create(name, migrated=migrated)
        self.schemas.append(schema)
        return self.postgres_schemas.url_for(schema)

    def drop(self) -> None:
        if self.postgres_schemas is not None:
            self.postgres_schemas.drop(self.schemas)


@pytest.fixture
def databases(
    database_kind: str,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
    postgres_schemas: PostgresSchemas | None,
) -> Iterator[Databases]:
    databases = Databases(database_kind, tmp_path, sqlite_template, postgres_schemas)
    yield databases
    databases.drop()


@pytest.fixture
def database_url(databases: Databases) -> Callable[[str], str]:
    """Make a fresh, empty database per name."""
    return lambda name: databases.url(name, migrated=False)


@pytest.fixture
def migrated_database_url(databases: Databases) -> Callable[[str], str]:
    """Make a fresh database per name, at the newest migration and otherwise empty."""
    return lambda name: databases.url(name, migrated=True)


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
def federation(
    tmp_path: Path, migrated_database_url: Callable[[str], str], clock: TestClock
) -> Iterator[Federation]:
    federation = Federation(tmp_path, migrated_database_url, clock)
    yield federation
    federation.close()


@pytest.fixture
def community(federation: Federation) -> TestNode:
    return federation.add("community", "community-network")


@pytest.fixture
def clinic(federation: Federation, community: TestNode) -> TestNode:
    """The clinic, trusted by the community and trusting it."""
    clinic = federation.add("clinic")
    federation.peer(community, clinic)
    return clinic


def assert_problem(response: TestResponse, status: int, code: str) -> None:
    """An RFC 9457 problem response with this status and code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code
