"""connected-objects 0.7: connections kept right for years by the worker.

``co_cursor`` becomes each ``(scope, entity)``'s schedule as well as its pull
position: when it was polled last and is due next (``poll_every`` overrides the
entity's cadence for this connection), a fleet-wide lease so one worker polls it
at a time, the last poll's error, and the same for reconcile with the last
reconcile's report.

``co_connection.refresh_expires_at`` keeps when the grant's refresh token dies
as the provider states it (QuickBooks ``x_refresh_token_expires_in``; Xero 60
days from its last use), so the worker renews an idle connection in time.

``co_history`` is a bounded log of every push and apply of an object: when,
which way, the operation, the outcome, the provider's (redacted) message, the
idempotency key or request id, the payload's hash and the latency.

Revision ID: co_0013
Revises: co_0012
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0013"
down_revision: str | None = "co_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("co_cursor") as batch:
        batch.add_column(sa.Column("poll_every", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("polled_at", _when, nullable=True))
        batch.add_column(sa.Column("next_poll_at", _when, nullable=True))
        batch.add_column(sa.Column("poll_error", _text, nullable=True))
        batch.add_column(sa.Column("reconciled_at", _when, nullable=True))
        batch.add_column(sa.Column("next_reconcile_at", _when, nullable=True))
        batch.add_column(sa.Column("reconcile_report", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", _when, nullable=True))
    with op.batch_alter_table("co_connection") as batch:
        batch.add_column(sa.Column("refresh_expires_at", _when, nullable=True))
    op.create_table(
        "co_history",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("local_type", sa.String(128), nullable=True),
        sa.Column("local_id", sa.String(255), nullable=True),
        sa.Column("foreign_id", sa.String(255), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("operation", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("at", _when, nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("payload_hash", sa.String(64), nullable=True),
        sa.Column("message", _text, nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("payload", _text, nullable=True),
    )
    op.create_index("ix_co_history_object", "co_history", ["local_type", "local_id", "id"])
    op.create_index("ix_co_history_at", "co_history", ["at"])
    op.create_index(
        "ix_co_history_foreign", "co_history", ["provider", "marketplace", "account", "entity", "foreign_id"]
    )


def downgrade() -> None:
    op.drop_table("co_history")
    with op.batch_alter_table("co_connection") as batch:
        batch.drop_column("refresh_expires_at")
    with op.batch_alter_table("co_cursor") as batch:
        for name in (
            "lease_expires_at",
            "lease_owner",
            "reconcile_report",
            "next_reconcile_at",
            "reconciled_at",
            "poll_error",
            "next_poll_at",
            "polled_at",
            "poll_every",
        ):
            batch.drop_column(name)
