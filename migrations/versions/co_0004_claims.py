"""connected-objects 0.4: claims that cost the same at any backlog.

``co_outbox_scope`` keeps, per scope, when its earliest change is due; a claim
takes the due scopes from there and each scope's oldest changes through the new
``co_outbox`` index on ``(provider, marketplace, account, next_attempt_at, id)``.
An in-flight change is now due again when its lease expires, so its
``next_attempt_at`` holds the lease's expiry.

Existing data: leased changes get their lease expiry as ``next_attempt_at``,
dead changes and a change behind its object's front change stand at 9999-01-01
(out of the order; the latter until its front change leaves), and
every scope with waiting or leased changes gets its row.

Revision ID: co_0004
Revises: co_0003
Create Date: 2026-12-01

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0004"
down_revision: str | None = "co_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "co_outbox_scope",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("due_at", _when, nullable=False),
        sa.PrimaryKeyConstraint("provider", "marketplace", "account", name="pk_co_outbox_scope"),
    )
    op.create_index("ix_co_outbox_scope_due_at", "co_outbox_scope", ["due_at"])
    op.create_index(
        "ix_co_outbox_provider_marketplace_account_next_attempt_at_id",
        "co_outbox",
        ["provider", "marketplace", "account", "next_attempt_at", "id"],
    )
    op.execute(
        "UPDATE co_outbox SET next_attempt_at = lease_expires_at "
        "WHERE state = 'in_flight' AND lease_expires_at IS NOT NULL"
    )
    # dead changes leave the queue's order (a claim's MIN over a scope skips them)
    op.execute("UPDATE co_outbox SET next_attempt_at = '9999-01-01 00:00:00' WHERE state = 'dead'")
    # a change behind its object's front change waits until that one leaves (the claim no longer looks)
    op.execute(
        "UPDATE co_outbox SET next_attempt_at = '9999-01-01 00:00:00' WHERE id IN (SELECT id FROM ("
        "SELECT p.id FROM co_outbox p JOIN co_outbox f ON f.provider = p.provider AND f.marketplace = p.marketplace "
        "AND f.account = p.account AND f.local_type = p.local_type AND f.local_id = p.local_id AND f.slot = 'f' "
        "WHERE p.slot = 'p') AS behind)"
    )
    op.execute(
        "INSERT INTO co_outbox_scope (provider, marketplace, account, due_at) "
        "SELECT provider, marketplace, account, MIN(next_attempt_at) FROM co_outbox "
        "WHERE state IN ('pending', 'in_flight') GROUP BY provider, marketplace, account"
    )


def downgrade() -> None:
    op.drop_index("ix_co_outbox_provider_marketplace_account_next_attempt_at_id", table_name="co_outbox")
    op.drop_index("ix_co_outbox_scope_due_at", table_name="co_outbox_scope")
    op.drop_table("co_outbox_scope")
