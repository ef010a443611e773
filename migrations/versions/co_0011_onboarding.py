"""connected-objects 0.6: onboarding a company that already keeps books.

``co_connection.onboarding`` says where connecting a company with existing
books stands: ``adopting`` (existing records are being paired with local rows
by natural keys), ``exporting`` (the local rows with no counterpart are being
pushed), ``attention`` (some rows could not be paired: they wait for an
operator) or ``live``. Connections made before start empty: nothing to do.

``co_ambiguity`` keeps the local rows that adopting could not pair with one
remote record because several candidates share a natural key value; none of
them is linked or exported until an operator links one by hand.

Revision ID: co_0011
Revises: co_0010
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0011"
down_revision: str | None = "co_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("co_connection") as batch:
        batch.add_column(sa.Column("onboarding", sa.String(16), nullable=True))
    op.create_table(
        "co_ambiguity",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("local_type", sa.String(128), nullable=False),
        sa.Column("local_id", sa.String(255), nullable=False),
        sa.Column("natural_key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("created_at", _when, nullable=False),
        sa.Column("updated_at", _when, nullable=False),
        sa.UniqueConstraint("provider", "marketplace", "account", "local_type", "local_id", name="uq_co_ambiguity_row"),
    )


def downgrade() -> None:
    op.drop_table("co_ambiguity")
    with op.batch_alter_table("co_connection") as batch:
        batch.drop_column("onboarding")
