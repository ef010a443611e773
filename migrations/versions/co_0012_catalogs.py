"""connected-objects 0.6: each connection's catalogs, cached.

``co_connection.catalogs`` keeps the read-only lists a company's settings are
checked against (Xero ``Accounts``, ``TaxRates``, ``Items``; QuickBooks
``Account``, ``TaxCode``, ``Item``), pulled through the provider's client:
``{entity: {"loaded_at": ISO time, "records": [{field: value, ...}, ...]}}``.
It is a cache: empty until a setting needs one, refreshed on demand; the
settings themselves stay in ``co_connection.settings``.

Revision ID: co_0012
Revises: co_0011
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "co_0012"
down_revision: str | None = "co_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("co_connection") as batch:
        batch.add_column(sa.Column("catalogs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("co_connection") as batch:
        batch.drop_column("catalogs")
