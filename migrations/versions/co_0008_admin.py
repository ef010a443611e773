"""connected-objects 0.5: indexes for the admin pages.

The admin pages list dead changes and dead events a page at a time, oldest
first, after the last id shown (keyset pagination). ``(state, id)`` on
``co_outbox`` and ``co_inbox`` makes each page one index range scan, so the
millionth page costs what the first does.

Revision ID: co_0008
Revises: co_0007
Create Date: 2026-12-02

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "co_0008"
down_revision: str | None = "co_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_co_outbox_state_id", "co_outbox", ["state", "id"])
    op.create_index("ix_co_inbox_state_id", "co_inbox", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_co_inbox_state_id", table_name="co_inbox")
    op.drop_index("ix_co_outbox_state_id", table_name="co_outbox")
