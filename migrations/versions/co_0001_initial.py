"""connected-objects 0.1: identity map, connections, outbox, inbox, cursors.

Revision ID: co_0001
Revises:
Create Date: 2026-11-27

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("connected_objects",)
depends_on: str | Sequence[str] | None = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _scope() -> list[sa.Column[object]]:
    return [
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
    ]


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", _when, nullable=False),
        sa.Column("updated_at", _when, nullable=False),
    ]


def _work() -> list[sa.Column[object]]:
    return [
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _when, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", _when, nullable=True),
        sa.Column("last_error", _text, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "co_connected_object",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        *_scope(),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("foreign_id", sa.String(255), nullable=False),
        sa.Column("local_type", sa.String(128), nullable=False),
        sa.Column("local_id", sa.String(255), nullable=False),
        sa.Column("remote_version", sa.String(128), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("last_push_at", _when, nullable=True),
        sa.Column("last_pull_at", _when, nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("last_error", _text, nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_co_connected_object"),
        sa.UniqueConstraint(
            "provider",
            "marketplace",
            "account",
            "entity",
            "foreign_id",
            name="uq_co_connected_object_foreign",
        ),
        sa.UniqueConstraint(
            "provider",
            "marketplace",
            "account",
            "local_type",
            "local_id",
            name="uq_co_connected_object_local",
        ),
    )
    op.create_index("ix_co_connected_object_local_type_local_id", "co_connected_object", ["local_type", "local_id"])

    op.create_table(
        "co_connection",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        *_scope(),
        sa.Column("owner_type", sa.String(128), nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=False),
        sa.Column("credentials", _blob, nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("directions", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("status_reason", _text, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("token_expires_at", _when, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_co_connection"),
        sa.UniqueConstraint("provider", "marketplace", "account", name="uq_co_connection_scope"),
    )
    op.create_index("ix_co_connection_owner_type_owner_id", "co_connection", ["owner_type", "owner_id"])

    op.create_table(
        "co_outbox",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        *_scope(),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("local_type", sa.String(128), nullable=False),
        sa.Column("local_id", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(8), nullable=False),
        sa.Column("slot", sa.String(1), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(64), nullable=True),
        *_work(),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_co_outbox"),
        sa.UniqueConstraint(
            "provider",
            "marketplace",
            "account",
            "local_type",
            "local_id",
            "slot",
            name="uq_co_outbox_slot",
        ),
    )
    op.create_index("ix_co_outbox_state_next_attempt_at", "co_outbox", ["state", "next_attempt_at"])

    op.create_table(
        "co_inbox",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=True),
        sa.Column("entity", sa.String(64), nullable=True),
        sa.Column("dedupe_key", sa.String(191), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("payload", _blob, nullable=False),
        *_work(),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_co_inbox"),
        sa.UniqueConstraint("provider", "marketplace", "dedupe_key", name="uq_co_inbox_dedupe"),
    )
    op.create_index("ix_co_inbox_state_next_attempt_at", "co_inbox", ["state", "next_attempt_at"])

    op.create_table(
        "co_cursor",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        *_scope(),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("position", sa.JSON(), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_co_cursor"),
        sa.UniqueConstraint("provider", "marketplace", "account", "entity", name="uq_co_cursor_scope_entity"),
    )


def downgrade() -> None:
    op.drop_table("co_cursor")
    op.drop_index("ix_co_inbox_state_next_attempt_at", table_name="co_inbox")
    op.drop_table("co_inbox")
    op.drop_index("ix_co_outbox_state_next_attempt_at", table_name="co_outbox")
    op.drop_table("co_outbox")
    op.drop_index("ix_co_connection_owner_type_owner_id", table_name="co_connection")
    op.drop_table("co_connection")
    op.drop_index("ix_co_connected_object_local_type_local_id", table_name="co_connected_object")
    op.drop_table("co_connected_object")
