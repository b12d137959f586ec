"""directory: services, capacity publication, peer directories, search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The full-text index is not a model: FTS5 on SQLite, a tsvector table on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity_publication",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "signed_version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "expires_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_publication")),
    )
    # The one row of the publication: version 1 is the empty document.
    op.execute("INSERT INTO capacity_publication (id, version) VALUES (1, 1)")
    op.create_table(
        "services",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("capacity_status", sa.String(length=32), nullable=False),
        sa.Column("accepting_referrals", sa.Boolean(), nullable=False),
        sa.Column("wait_days", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("notes", sa.String(length=1000), nullable=True),
        sa.Column("intake_fields", sa.JSON(), nullable=False),
        sa.Column(
            "verified_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "capacity_updated_at",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "updated_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
    )
    op.create_table(
        "directory_services",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("peer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("service_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("organization_name", sa.String(length=500), nullable=False),
        sa.Column("hsds_status", sa.String(length=32), nullable=False),
        sa.Column("capacity_status", sa.String(length=32), nullable=False),
        sa.Column("accepting_referrals", sa.Boolean(), nullable=False),
        sa.Column("wait_days", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("intake_fields", sa.JSON(), nullable=False),
        sa.Column(
            "verified_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "updated_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "minimum_age", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "maximum_age", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("affirming", sa.Boolean(), nullable=False),
        sa.Column(
            "availability", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "freshness", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["peers.id"],
            name=op.f("fk_directory_services_peer_id_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_services")),
        sa.UniqueConstraint("peer_id", "service_id", name=op.f("uq_directory_services_peer_id")),
    )
    with op.batch_alter_table("directory_services", schema=None) as batch_op:
        batch_op.create_index(
            "ix_directory_services_filters",
            [
                "peer_id",
                "hsds_status",
                "affirming",
                "minimum_age",
                "maximum_age",
                "capacity_status",
                "accepting_referrals",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_directory_services_rank", ["availability", "freshness", "name", "id"], unique=False
        )

    op.create_table(
        "peer_directories",
        sa.Column("peer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=128), nullable=True),
        sa.Column("issued_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "expires_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("synced_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "attempted_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "next_sync_at", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("failures", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["peers.id"],
            name=op.f("fk_peer_directories_peer_id_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_peer_directories")),
    )
    with op.batch_alter_table("peer_directories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_peer_directories_next_sync_at"), ["next_sync_at"], unique=False
        )

    op.create_table(
        "directory_locations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["directory_services.id"],
            name=op.f("fk_directory_locations_entry_id_directory_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_locations")),
    )
    with op.batch_alter_table("directory_locations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_locations_entry_id"), ["entry_id"], unique=False
        )
        batch_op.create_index(
            "ix_directory_locations_latitude", ["latitude", "longitude"], unique=False
        )

    op.create_table(
        "directory_records",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["directory_services.id"],
            name=op.f("fk_directory_records_entry_id_directory_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_directory_records")),
    )
    op.create_table(
        "directory_tags",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["directory_services.id"],
            name=op.f("fk_directory_tags_entry_id_directory_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_id", "kind", "value", name=op.f("pk_directory_tags")),
    )
    with op.batch_alter_table("directory_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_directory_tags_kind_value", ["kind", "value", "entry_id"], unique=False
        )

    _create_search_index()


def _create_search_index() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # rowid = directory_services.id; diacritics folded so Arabic and accented text match.
        op.execute(
            "CREATE VIRTUAL TABLE directory_fts USING fts5("
            "name, body, areas, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
        )
        return
    op.execute(
        "CREATE TABLE directory_fts ("
        "entry_id BIGINT PRIMARY KEY REFERENCES directory_services (id) ON DELETE CASCADE, "
        "document TSVECTOR NOT NULL, areas TSVECTOR NOT NULL)"
    )
    op.execute("CREATE INDEX directory_fts_document ON directory_fts USING gin (document)")
    op.execute("CREATE INDEX directory_fts_areas ON directory_fts USING gin (areas)")


def downgrade() -> None:
    op.execute("DROP TABLE directory_fts")
    with op.batch_alter_table("directory_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_directory_tags_kind_value")

    op.drop_table("directory_tags")
    op.drop_table("directory_records")
    with op.batch_alter_table("directory_locations", schema=None) as batch_op:
        batch_op.drop_index("ix_directory_locations_latitude")
        batch_op.drop_index(batch_op.f("ix_directory_locations_entry_id"))

    op.drop_table("directory_locations")
    with op.batch_alter_table("peer_directories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_directories_next_sync_at"))

    op.drop_table("peer_directories")
    with op.batch_alter_table("directory_services", schema=None) as batch_op:
        batch_op.drop_index("ix_directory_services_rank")
        batch_op.drop_index("ix_directory_services_filters")

    op.drop_table("directory_services")
    op.drop_table("services")
    op.drop_table("capacity_publication")
