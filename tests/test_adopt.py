"""Adopting a company's existing books, against an in-memory feed: what a user gets wrong is said, not guessed."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.plugin.provider import API_VERSION
from connected_objects.plugin.provider import Limits
from connected_objects.plugin.provider import Page
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.receive.adopt import adopt
from connected_objects.store.models import connected_object

SCOPE = Scope("books", "test", "acme")


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "ad_shop"
    id: Mapped[int] = mapped_column(primary_key=True)


MAPPING = FieldMapping({"company": "DisplayName", "email": "Email"})


@connected("books", entity="Customer", mapping=MAPPING, owner="shop_id", natural_keys=("DisplayName", "Email"))
class Client(Base):
    __tablename__ = "ad_client"
    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("ad_shop.id"))
    company: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(80))


@connected("books", entity="Vendor", mapping=FieldMapping({"name": "Name"}), owner="shop_id", natural_keys=("Nmae",))
class Supplier(Base):
    __tablename__ = "ad_supplier"
    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("ad_shop.id"))
    name: Mapped[str] = mapped_column(String(80))


class Books:
    """A provider whose records are given, read 2 a page."""

    name = "books"
    api_version = API_VERSION
    entities = frozenset({"Customer", "Vendor"})

    def __init__(self, records: Mapping[str, list[dict[str, Any]]]) -> None:
        self.records = {
            e: [RemoteRecord(e, str(i), d, version="1") for i, d in enumerate(rs, 1)] for e, rs in records.items()
        }

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=2)

    def client(self, scope: Scope, http: Any, credentials: Mapping[str, Any]) -> Books:
        return self

    async def changes(self, entity: str, cursor: Any) -> Page:
        start = int(cursor or 0)
        page = self.records.get(entity, [])[start : start + 2]
        return Page(page, start + len(page), start + len(page) < len(self.records.get(entity, [])))

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        return [r for r in self.records.get(entity, []) if r.foreign_id in foreign_ids]


def make(engine: Any, records: Mapping[str, list[dict[str, Any]]], models: list[type]) -> Hub:
    Base.metadata.create_all(engine)
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=models, providers=[Books(records)])
    with hub.session_factory.begin() as s:
        s.add(Shop(id=1))
        s.flush()
        s.add_all([Client(shop_id=1, company="Acme Ltd"), Client(shop_id=1, company="Globex")])
        s.add_all([Supplier(shop_id=1, name="Initech")])
        connections.connect(s, "ad_shop", 1, SCOPE, directions={"Customer": "push", "Vendor": "push"})
    return hub


def links(hub: Hub) -> int:
    with hub.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(connected_object)) or 0)


def test_a_misspelt_natural_key_is_refused_naming_the_field_before_anything_is_written(sqlite_engine):
    hub = make(sqlite_engine, {"Vendor": [{"Name": "Initech"}]}, [Supplier])
    with pytest.raises(ConfigurationError, match=r"Nmae.*Did you mean 'Name'\?.*natural_keys") as refused:
        asyncio.run(adopt(hub, SCOPE, apply=True))
    assert "everything would be created again" in str(refused.value)
    assert links(hub) == 0


def test_a_key_no_row_has_a_value_for_is_a_warning_and_the_next_key_still_matches(sqlite_engine):
    records = {"Customer": [{"DisplayName": "ACME LTD"}, {"DisplayName": "Umbrella"}, {"DisplayName": "globex"}]}
    hub = make(sqlite_engine, records, [Client])
    report = asyncio.run(adopt(hub, SCOPE, entities=["Customer"]))
    [customers] = report.entities
    assert (customers.matched, customers.local_only, customers.remote_only) == (2, 0, 1)
    assert customers.warnings == [
        "Email is empty on all 2 Client rows (as the mapping writes them) and all 3 Customer records"
    ]
    assert "Email is empty" in report.summary() and links(hub) == 0
    applied = asyncio.run(adopt(hub, SCOPE, entities=["Customer"], apply=True))
    assert applied.entities[0].linked == 2 and links(hub) == 2
    again = asyncio.run(adopt(hub, SCOPE, entities=["Customer"], apply=True))
    assert (again.entities[0].matched, again.entities[0].already_linked) == (0, 2) and links(hub) == 2
