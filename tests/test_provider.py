"""The provider contract is declared: each optional extra is detected by its Protocol, and a provider
with none of them works (pushes, pulls, an empty web app)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.plugin.provider import Extras
from connected_objects.plugin.provider import Provider
from connected_objects.plugin.provider import extras_of
from connected_objects.receive.pull import pull
from connected_objects.testing import MemoryProvider
from connected_objects.web.core import Request


class Plain(MemoryProvider):
    """No extra at all."""


class Folding(Plain):
    def fold_reference(self, entity, name, foreign_id):
        return {"id": foreign_id}


class Decoding(Plain):
    def decode_event(self, entity, payload):
        return payload.decode()


class Routing(Plain):
    def routes(self, context):
        return []


class Refreshing(Plain):
    async def refresh_token(self, scope, http, credentials):
        raise NotImplementedError


@pytest.mark.parametrize(
    ("provider", "names"),
    [
        (Plain(), ()),
        (Folding(), ("fold_reference",)),
        (Decoding(), ("decode_event",)),
        (Routing(), ("routes",)),
        (Refreshing(), ("refresh_token",)),
    ],
)
def test_each_extra_is_detected_by_its_protocol(provider, names):
    assert isinstance(provider, Provider)
    extras = extras_of(provider)
    assert extras.names == names
    for name in ("fold_reference", "decode_event", "routes", "refresh_token"):
        assert (getattr(extras, name) is not None) == (name in names)


class Base(DeclarativeBase):
    pass


@connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}))
class Note(Base):
    __tablename__ = "contract_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(40))


def test_a_provider_without_extras_pushes_pulls_and_serves_no_route(sqlite_engine):
    Base.metadata.create_all(sqlite_engine)
    provider = Plain()
    hub = Hub(sessionmaker(sqlite_engine, expire_on_commit=False), models=[Note], providers=[provider])
    hub.install()
    scope = Scope("memory", "test", "note-1")
    try:
        with hub.session_factory.begin() as s:
            s.add(Note(id=1, text="hello"))
            s.flush()
            connections.connect(s, "contract_note", 1, scope)
        with hub.session_factory.begin() as s:
            s.get(Note, 1).text = "hello again"
        stats = hub.drain()
        assert stats.dead == 0 and stats.pushed >= 1
        assert [r["text"] for r in provider.records.values()] == ["hello again"]
        asyncio.run(pull(hub, scope, "notes"))  # no fold, no decode, no refresh: nothing is asked of them
        assert hub.extras("memory") == Extras()
        assert hub.webhooks().handle(Request("POST", "/anything", {}, b"")).status == 404
    finally:
        hub.uninstall()
