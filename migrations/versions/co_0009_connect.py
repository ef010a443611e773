"""connected-objects 0.5: authorizations under way ("Connect an account").

``co_authorization`` holds one row per started OAuth authorization: the
SHA-256 of its ``state`` nonce (unique) and of the browser-binding cookie,
the owner that started it, the PKCE verifier and, while a Xero user picks
tenants, the grant's tokens (both sealed by the vault), and when it expires
(10 minutes after the start). A callback or a pick moves ``stage`` on with one
conditional UPDATE, so a replayed ``state`` is refused. No existing row
changes.

Revision ID: co_0009
Revises: co_0008
Create Date: 2026-12-02

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0009"
down_revision: str | None = "co_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "co_authorization",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("owner_type", sa.String(128), nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("verifier", _blob, nullable=True),
        sa.Column("tokens", _blob, nullable=True),
        sa.Column("token_expires_at", _when, nullable=True),
        sa.Column("accounts", sa.JSON(), nullable=True),
        sa.Column("expires_at", _when, nullable=False),
        sa.Column("created_at", _when, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_co_authorization"),
        sa.UniqueConstraint("state_hash", name="uq_co_authorization_state_hash"),
    )
    op.create_index("ix_co_authorization_expires_at", "co_authorization", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_co_authorization_expires_at", table_name="co_authorization")
    op.drop_table("co_authorization")
