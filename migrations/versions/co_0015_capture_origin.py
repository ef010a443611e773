"""connected-objects 0.8: trigger capture (after co_0014, queued actions).

``co_capture_origin`` holds, on SQLite only, the origin of the applier's write
transaction while it runs, which the capture triggers of a model declared with
``capture="database"`` copy into the journal so the change is not sent back to
where it came from (PostgreSQL and MariaDB carry it in a transaction setting or
a session variable instead; the table stays empty there). SQLite lets one
transaction write at a time, so the row is only ever seen by the transaction
that wrote it, which deletes it before it commits.

The triggers themselves belong to your tables, not ours: create them in your own
migrations (``connected-objects schema triggers --app …`` prints the lines).

Revision ID: co_0015
Revises: co_0014
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "co_0015"
down_revision: str | None = "co_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "co_capture_origin",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("origin", sa.String(400), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("co_capture_origin")
