"""connected-objects 0.8: queued actions on records (an invoice sent by email).

``co_outbox.options`` holds a queued action's options as JSON (QuickBooks'
``sendTo`` for an invoice's ``send``). An action is an outbox change like any
other (operation ``action``, its own object ``(local_type:action, local_id)``
so it never coalesces with the row's own upserts); only its options need a
place, since a change otherwise carries no payload. See
:mod:`connected_objects.push.actions`.

Revision ID: co_0014
Revises: co_0013
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0014"
down_revision: str | None = "co_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.add_column(sa.Column("options", _text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("co_outbox") as batch:
        batch.drop_column("options")
