"""Alembic environment: runs migrations on the engine handed over by exchange_node.db.migrate."""

from __future__ import annotations

from alembic import context

from exchange_node.db.models import Base, is_modelled_table

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
        include_name=lambda name, kind, _parents: kind != "table" or is_modelled_table(name),
    )
    with context.begin_transaction():
        context.run_migrations()
