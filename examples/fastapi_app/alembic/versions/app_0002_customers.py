"""Customers, and the customer of an invoice.

Revision ID: app_0002
Revises: app_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "app_0002"
down_revision = "app_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("organization_id", sa.Integer(), sa.ForeignKey("organization.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
    )
    with op.batch_alter_table("invoice") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_invoice_customer_id_customer", "customer", ["customer_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("invoice") as batch:
        batch.drop_constraint("fk_invoice_customer_id_customer", type_="foreignkey")
        batch.drop_column("customer_id")
    op.drop_table("customer")
