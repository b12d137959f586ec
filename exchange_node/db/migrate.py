"""Alembic migrations: applied by ``init`` and ``migrate``, checked on every start.

The Alembic configuration is built in code (no alembic.ini), pointing at the
migration scripts shipped in this package. Alembic is imported only when used: every
command checks the schema on start, and importing Alembic costs a third of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from exchange_node.db import Database
from exchange_node.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = database.engine
    return config


def head_revision(database: Database) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise StorageError("no migrations found in the package")
    return head


def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with database.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as e:
        raise StorageError(f"database unreachable: {type(e).__name__}") from e


def upgrade(database: Database) -> None:
    """Bring the database to the newest schema."""
    from alembic import command

    try:
        command.upgrade(alembic_config(database), "head")
    except SQLAlchemyError as e:
        raise StorageError(f"migration failed: {type(e).__name__}: {e}") from e


def check_migrated(database: Database) -> None:
    """Refuse to run on a database that is behind (or ahead of) this code.

    Raises:
        StorageError: naming the command that brings it up to date.
    """
    current, head = current_revision(database), head_revision(database)
    if current != head:
        raise StorageError(
            f"the database is at migration {current or 'none'}, this version needs {head}: "
            "run 'exchange-node migrate'"
        )
