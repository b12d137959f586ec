"""Fresh databases for node tests, at the newest migration without migrating each one.

Running the migrations (their DDL) costs 40-250 ms a database, and tests make two or
three nodes each, on SQLite and again on PostgreSQL. So the real Alembic migrations
run once per test session, and every node gets a copy of what they made:

- SQLite: a template file, migrated once, copied per node.
- PostgreSQL: the statements the migrations executed in a template schema, recorded
  once and replayed in each new schema in one round trip. Before first use, a replay is
  checked against the template: same relations, columns, constraints, indexes,
  sequences, triggers, functions and rows. A thread keeps a few such schemas ready and
  drops used ones while the tests run.

A template only ever holds what the migrations wrote (no node is made from it, so no
keys), and ``initialize_node`` still runs ``upgrade``, which finds the copy at head. The
migrations themselves run online, on empty databases, in tests/node/test_storage.py.
This module does not choose which tests run on which database (tests/node/conftest.py).
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import event

from exchange_node.db import Database, normalize_url
from exchange_node.db.migrate import upgrade


class SqliteTemplate:
    """One SQLite file migrated to head (made when first needed), copied for each node."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "template.db"
        self._made = False

    def copy_to(self, path: Path) -> None:
        if not self._made:
            self._migrate()
        shutil.copyfile(self._path, path)

    def _migrate(self) -> None:
        database = Database(f"sqlite:///{self._path}")
        try:
            upgrade(database)
        finally:
            database.dispose()  # the last connection to close checkpoints the WAL into the file
        leftovers = [p.name for p in self._path.parent.glob(f"{self._path.name}-*")]
        assert not leftovers, f"the template is not all in one file: {leftovers}"
        self._made = True


class PostgresSchemas:
    """Schemas of their own in one test database: empty, or at the newest migration.

    Migrated schemas are made ahead, and dropped, by a thread with a connection of its
    own: PostgreSQL does that work while the tests run, instead of before and after
    each one. Each schema still serves one node of one test, and is dropped after it.
    """

    def __init__(self, url: str, ahead: int = 4) -> None:
        self.url = url
        self._ahead = ahead
        self._admin: psycopg.Connection[Any] | None = None
        self._migrations: bytes | None = None
        self._changed = threading.Condition()
        self._ready: deque[str] = deque()
        self._doomed: list[str] = []
        self._stopping = False
        self._failure: BaseException | None = None
        self._worker: threading.Thread | None = None

    def url_for(self, schema: str) -> str:
        """The URL of ``schema``: sessions on it find its tables first."""
        return f"{normalize_url(self.url)}?options=-csearch_path%3D{schema}"

    def create(self, name: str, *, migrated: bool) -> str:
        """A new schema for ``name``, empty or as the migrations leave it; its name."""
        if migrated:
            return self._take_ready()
        schema = _new_name(name)
        self._execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        return schema

    def drop(self, schemas: Sequence[str]) -> None:
        """Drop ``schemas`` (no connection may still use them), soon or now."""
        if not schemas:
            return
        if self._worker is None or not self._worker.is_alive():
            self._execute(_drop_statement(schemas))
            return
        with self._changed:
            self._doomed.extend(schemas)
            self._changed.notify_all()

    def close(self) -> None:
        """Drop what is left; raise what went wrong in the background."""
        if self._worker is not None:
            with self._changed:
                self._stopping = True
                self._changed.notify_all()
            self._worker.join()
            self.drop([*self._ready, *self._doomed])  # only left if the thread failed
        if self._admin is not None:
            self._admin.close()
        if self._failure is not None:
            raise RuntimeError("making or dropping test schemas failed") from self._failure

    def _execute(self, statement: sql.Composed | bytes) -> None:
        if self._admin is None:
            self._admin = psycopg.connect(self.url, autocommit=True)
        self._admin.execute(statement)

    def _take_ready(self) -> str:
        if self._worker is None:
            self._migrations = self._record_migrations()
            self._worker = threading.Thread(target=self._work, name="test-schemas", daemon=True)
            self._worker.start()
        with self._changed:
            while not self._ready:
                if self._failure is not None or not self._worker.is_alive():
                    raise RuntimeError("no test schema: making one failed") from self._failure
                self._changed.wait(timeout=1)
            schema = self._ready.popleft()
            self._changed.notify_all()
            return schema

    def _work(self) -> None:
        """Keep ``ahead`` migrated schemas ready, drop the doomed; at the end drop them all."""
        assert self._migrations is not None
        try:
            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute("SET lock_timeout = '30s'")  # fail, never hang, on a lock
                while True:
                    with self._changed:
                        while not (
                            self._stopping or self._doomed or len(self._ready) < self._ahead
                        ):
                            self._changed.wait()
                        stopping, doomed, self._doomed = self._stopping, self._doomed, []
                        make = not stopping and len(self._ready) < self._ahead
                        if stopping:
                            doomed += self._ready
                            self._ready.clear()
                    if make:
                        schema = _new_name("node")
                        connection.execute(_replay_script(schema, self._migrations))
                        with self._changed:
                            self._ready.append(schema)
                            self._changed.notify_all()
                    if doomed:
                        connection.execute(_drop_statement(doomed))
                    if stopping:
                        return
        except BaseException as e:
            with self._changed:
                self._failure = e
                self._changed.notify_all()

    def _record_migrations(self) -> bytes:
        """Migrate a template schema, keeping what it executed; check a replay matches it."""
        template = self.create("template", migrated=False)
        probe = _new_name("probe")
        try:
            database = Database(self.url_for(template))
            executed: list[str] = []
            event.listen(database.engine, "before_cursor_execute", _recorder(executed))
            try:
                upgrade(database)
            finally:
                database.dispose()
            recorded = ";\n".join(executed).encode()
            self._execute(_replay_script(probe, recorded))
            replayed, migrated = self._fingerprint(probe), self._fingerprint(template)
        finally:
            self._execute(_drop_statement([template, probe]))
        assert replayed == migrated, "the recorded migrations do not remake the migrated schema"
        return recorded

    def _fingerprint(self, schema: str) -> dict[str, list[tuple[Any, ...]]]:
        """What the schema holds, with its own name taken out of definitions."""
        assert self._admin is not None
        found = {
            name: [
                tuple(_unnamed(value, schema) for value in row)
                for row in self._admin.execute(query, {"schema": schema}).fetchall()
            ]
            for name, query in _CATALOG_QUERIES.items()
        }
        tables = [str(row[0]) for row in found["relations"] if row[1] in ("r", "p")]
        found["rows"] = [
            (table, self._admin.execute(_rows_query(schema, table)).fetchone()) for table in tables
        ]
        return found


def _new_name(name: str) -> str:
    return f"exnode_{name}_{uuid.uuid4().hex[:12]}"


def _drop_statement(schemas: Sequence[str]) -> sql.Composed:
    names = sql.SQL(", ").join(sql.Identifier(schema) for schema in schemas)
    return sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(names)


def _replay_script(schema: str, migrations: bytes) -> bytes:
    """Create ``schema`` and run ``migrations`` in it: several statements without parameters,
    so one round trip and one implicit transaction."""
    start = sql.SQL("CREATE SCHEMA {0};\nSET search_path TO {0};\n").format(sql.Identifier(schema))
    return start.as_bytes() + migrations + b";\nRESET search_path"


def _recorder(executed: list[str]) -> Any:
    def record(
        _connection: Any,
        _cursor: Any,
        statement: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None,
        _context: Any,
        executemany: bool,
    ) -> None:
        if _is_catalog_read(statement):
            return  # Alembic looking for its version table: changes nothing
        assert not parameters, f"cannot replay a statement with parameters: {statement}"
        assert not executemany, f"cannot replay an executemany: {statement}"
        # psycopg reads '%%' as '%' when it is given parameters, even empty ones.
        executed.append(statement.replace("%%", "%") if parameters is not None else statement)

    return record


def _is_catalog_read(statement: str) -> bool:
    words = statement.split()
    return bool(words) and words[0].upper() == "SELECT" and "pg_catalog." in statement


def _unnamed(value: object, schema: str) -> object:
    return value.replace(schema, "<schema>") if isinstance(value, str) else value


def _rows_query(schema: str, table: str) -> sql.Composed:
    return sql.SQL(
        "SELECT count(*), string_agg(r, ',' ORDER BY r)"
        " FROM (SELECT to_jsonb(t)::text AS r FROM {}.{} AS t) AS rows"
    ).format(sql.Identifier(schema), sql.Identifier(table))


_CATALOG_QUERIES: dict[str, sql.SQL] = {
    "relations": sql.SQL(
        "SELECT c.relname, c.relkind, c.relpersistence, obj_description(c.oid, 'pg_class')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %(schema)s ORDER BY c.relname"
    ),
    "columns": sql.SQL(
        "SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),"
        " a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),"
        " col_description(c.oid, a.attnum)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE n.nspname = %(schema)s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY c.relname, a.attnum"
    ),
    "constraints": sql.SQL(
        "SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = %(schema)s ORDER BY 1, 2"
    ),
    "indexes": sql.SQL(
        "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = %(schema)s ORDER BY 1, 2"
    ),
    "sequences": sql.SQL(
        "SELECT sequencename, data_type::text, start_value, increment_by, last_value"
        " FROM pg_sequences WHERE schemaname = %(schema)s ORDER BY 1"
    ),
    "triggers": sql.SQL(
        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)"
        " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %(schema)s AND NOT t.tgisinternal ORDER BY 1, 2"
    ),
    "functions": sql.SQL(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %(schema)s ORDER BY 1, 2"
    ),
    "types": sql.SQL(
        "SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = %(schema)s ORDER BY 1"
    ),
}
