"""Storage: migrations match the models on SQLite and PostgreSQL; bad databases are refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from exchange_node.db import Database, normalize_url
from exchange_node.db.migrate import alembic_config, check_migrated, current_revision, upgrade
from exchange_node.db.models import Base, OwnKey, is_modelled_table
from exchange_node.errors import NotInitializedError, StorageError
from exchange_node.node import Node
from exchange_node.settings import load_settings, write_config

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/gone"


@pytest.fixture
def database(database_url: Callable[[str], str]) -> Iterator[Database]:
    """A fresh, empty database (SQLite file or PostgreSQL database)."""
    database = Database(database_url("storage"))
    yield database
    database.dispose()


def differences(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _parents: (
                    kind != "table" or is_modelled_table(name)
                ),
            },
        )
        return list(compare_metadata(context, Base.metadata))


def test_migrations_produce_exactly_the_models(database: Database) -> None:
    upgrade(database)
    assert differences(database) == []
    command.check(alembic_config(database))  # what 'alembic check' runs in CI


def test_migrations_downgrade_to_an_empty_database(database: Database) -> None:
    upgrade(database)
    command.downgrade(alembic_config(database), "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
    upgrade(database)
    check_migrated(database)


def test_upgrade_twice_changes_nothing(database: Database) -> None:
    upgrade(database)
    revision = current_revision(database)
    upgrade(database)
    assert current_revision(database) == revision is not None


def test_unmigrated_database_is_refused_naming_the_command(database: Database) -> None:
    with pytest.raises(StorageError, match=r"at migration none.*run 'exchange-node migrate'"):
        check_migrated(database)


def test_node_open_refuses_an_unmigrated_database(tmp_path: Path, database: Database) -> None:
    settings = load_settings(
        tmp_path,
        environ={},
        name="Clinic",
        kind="clinic",
        url="https://clinic.example",
        database_url=database.url,
    )
    write_config(settings)
    with pytest.raises(StorageError, match="run 'exchange-node migrate'") as refused:
        Node.open(settings)
    assert refused.value.status == 503


def test_node_open_refuses_a_home_without_a_node(tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError, match="run 'exchange-node init'"):
        Node.open(load_settings(tmp_path, environ={}))


def test_unreachable_database_is_storage_unavailable() -> None:
    database = Database(UNREACHABLE)
    try:
        with pytest.raises(StorageError, match="database unreachable: OperationalError"):
            database.ping()
        with pytest.raises(StorageError, match="database unreachable"):
            check_migrated(database)
    finally:
        database.dispose()


def test_unusable_database_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot use database URL"):
        Database("nosuchdriver://somewhere/db")


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_database_errors_roll_back_and_become_storage_errors(database: Database) -> None:
    upgrade(database)
    row = {"use": "sig", "published_at": 1, "active_from": 1, "retire_at": None}
    with database.session() as session:
        session.add(OwnKey(kid="a" * 43, **row))

    def insert_a_duplicate() -> None:
        with database.session() as session:
            session.add(OwnKey(kid="b" * 43, **row))
            session.flush()
            session.add(OwnKey(kid="a" * 43, **row))

    with pytest.raises(StorageError, match="database error: IntegrityError"):
        insert_a_duplicate()
    with database.session() as session:
        assert session.get(OwnKey, "b" * 43) is None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 15_000
    finally:
        database.dispose()
