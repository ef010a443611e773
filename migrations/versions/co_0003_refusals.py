"""connected-objects 0.3: refusals on the outbox.

``co_outbox.refusals`` counts how many times the provider refused a write of
the object for good (a validation error: nothing was created or changed). It is
part of the write's idempotency key, so the next attempt after a refusal is a
new request instead of the provider's replay of the refusal, while a write
whose answer was lost keeps its key and is never applied twice.

Existing rows start at 0, which gives the keys they had before.

Revision ID: co_0003
Revises: co_0002
Create Date: 2026-12-01

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "co_0003"
down_revision: str | None = "co_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.add_column(sa.Column("refusals", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.drop_column("refusals")
