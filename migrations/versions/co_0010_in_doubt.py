"""connected-objects 0.6: writes in doubt on the outbox.

``co_outbox.in_doubt`` holds, for a change whose write was sent but whose
outcome is not known yet (the answer was lost, the worker was killed, the
outcome's commit failed), exactly what was sent: the call's idempotency key,
its position in a batch call, the action, the payload, the remote id and
version. It is written *before* the call leaves, so the next attempt repeats
that very call, and the provider answers it as the same request (QuickBooks
replays a ``requestid``), whatever else the next claim holds. It is cleared
with the change's outcome: pushed, or refused for good (nothing was written).

Existing rows start empty: they are sent as before.

Revision ID: co_0010
Revises: co_0009
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0010"
down_revision: str | None = "co_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.add_column(sa.Column("in_doubt", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")))


def downgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.drop_column("in_doubt")
