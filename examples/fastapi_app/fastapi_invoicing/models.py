"""The application's own tables: organizations, their users, and invoices synced to Connec!."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from connected_objects import FieldMapping
from connected_objects import connected


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))


# Every committed insert, update or delete of an invoice goes to each Connec! group its
# organization is connected to (through the organization's co_connection rows).
@connected(
    "maestrano",
    entity="invoices",
    mapping=FieldMapping({"number": "title", "total_cents": "amount"}),
    owner="organization_id",
)
class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    number: Mapped[str] = mapped_column(String(40))
    total_cents: Mapped[int] = mapped_column(default=0)
