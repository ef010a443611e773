"""connected-objects 0.4: limits shared by a fleet of workers.

``co_limit`` holds, per key (a scope, a provider's app), the theoretical
arrival time of the next request slot (microseconds since the epoch; a GCRA)
and the hold on it after a 429 or a day limit, so every worker keeps to one
quota and a restarted worker still honours a hold. ``co_limit_lease`` holds
concurrency leases, one row per (key, slot below the cap), each with the token
of its holder and when it expires.

Revision ID: co_0005
Revises: co_0004
Create Date: 2026-12-02

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0005"
down_revision: str | None = "co_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "co_limit",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("tat", sa.BigInteger(), nullable=False),
        sa.Column("held_until", _when, nullable=True),
        sa.Column("hold_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_co_limit"),
    )
    op.create_table(
        "co_limit_lease",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("expires_at", _when, nullable=True),
        sa.PrimaryKeyConstraint("name", "slot", name="pk_co_limit_lease"),
    )


def downgrade() -> None:
    op.drop_table("co_limit_lease")
    op.drop_table("co_limit")
