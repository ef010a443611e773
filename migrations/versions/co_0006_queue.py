"""connected-objects 0.5: the queue component; inbox rows say their kind.

``co_inbox.kind`` says what a row is: ``event`` (a provider's notification),
``import`` (a queued backfill of one entity) or ``parked`` (a record waiting
for its reference to be linked). Until now that was read from the payload (the
import marker ``{"connected_objects":"import"}``, a parked record's
``{"connected_objects":"parked",…}``); existing rows get their kind from it.
An index on ``(kind, provider, marketplace, account)`` lets a scope's parked
records be woken without reading the rest of the inbox.

Revision ID: co_0006
Revises: co_0005
Create Date: 2026-12-02

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "co_0006"
down_revision: str | None = "co_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_co_inbox_kind_provider_marketplace_account"


def upgrade() -> None:
    with op.batch_alter_table("co_inbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default=sa.text("'event'")))
    inbox = sa.table("co_inbox", sa.column("kind", sa.String), sa.column("payload", sa.LargeBinary))
    # the payload markers the library wrote before this revision (connected_objects.inbox, 0.4)
    op.execute(inbox.update().where(inbox.c.payload == b'{"connected_objects":"import"}').values(kind="import"))
    marker = b'{"connected_objects":"parked"'
    op.execute(
        inbox.update()
        .where(sa.func.substr(inbox.c.payload, 1, len(marker)) == sa.literal(marker, sa.LargeBinary))
        .values(kind="parked")
    )
    op.create_index(_INDEX, "co_inbox", ["kind", "provider", "marketplace", "account"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="co_inbox")
    with op.batch_alter_table("co_inbox") as batch:
        batch.drop_column("kind")
