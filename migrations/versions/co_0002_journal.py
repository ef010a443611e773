"""connected-objects 0.2: the capture journal and named worker locks.

Capture appends one row per flush to ``co_journal``; workers fold it into
``co_outbox``, one worker at a time, taking turns through the ``journal`` row
of ``co_lock``.

Revision ID: co_0002
Revises: co_0001
Create Date: 2026-11-27

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0002"
down_revision: str | None = "co_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "co_journal",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(64), nullable=True),
        sa.Column("changes", _text, nullable=False),
        sa.Column("created_at", _when, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_co_journal"),
    )
    lock = op.create_table(
        "co_lock",
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_co_lock"),
    )
    op.bulk_insert(lock, [{"name": "journal"}])


def downgrade() -> None:
    op.drop_table("co_lock")
    op.drop_table("co_journal")
