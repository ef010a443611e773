"""Queued actions (``request_action``): requested in the app's transaction, done by the worker once.

Against a memory provider that declares ``send`` on its notes and whose client performs it with
real idempotency (a key seen before is answered from its first call and does nothing), on every
database: a bad request queues nothing; two requests while one waits are one send with the last
options; a send waits behind a pending edit of its row; a row never pushed gets its push queued;
a client that cannot perform leaves the action dead with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import RemoteRecord
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects import outbox
from connected_objects import request_action
from connected_objects.limits import MemoryLimits
from connected_objects.limits.gates import ScopeGate
from connected_objects.plugin.entities import EntityCatalog
from connected_objects.plugin.entities import EntitySpec
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import CHANGES
from connected_objects.testing import MemoryProvider
from connected_objects.testing.memory import MemoryClient

SCOPE = Scope("memory", "test", "acme")


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "ta_team"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="team_id", owner_type="ta")
class Note(Base):
    __tablename__ = "ta_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("ta_team.id"))
    text: Mapped[str] = mapped_column(String(100))


class Sending(MemoryClient):
    """The memory client, with ``perform``: each new key is one send, logged in order with the writes."""

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        made = await super().create(entity, payload, idempotency_key=idempotency_key)
        self.provider.log.append(("create", made.foreign_id, dict(payload)))  # type: ignore[attr-defined]
        return made

    async def update(self, entity: str, foreign_id: str, payload: Mapping[str, Any], **kw: Any) -> RemoteRecord:
        done = await super().update(entity, foreign_id, payload, **kw)
        self.provider.log.append(("update", foreign_id, dict(payload)))  # type: ignore[attr-defined]
        return done

    async def perform(
        self, entity: str, foreign_id: str, action: str, options: Mapping[str, Any], *, idempotency_key: str
    ) -> RemoteRecord | None:
        provider: Notes = self.provider  # type: ignore[assignment]
        if idempotency_key not in provider.performed:
            provider.performed[idempotency_key] = (action, foreign_id)
            provider.log.append((action, foreign_id, dict(options)))
        return None


class Notes(MemoryProvider):
    """A memory provider whose notes have a ``send`` action."""

    entity_catalog = EntityCatalog([EntitySpec("notes", path="notes", id_field="id", actions=("send",))])

    def __init__(self, *, performs: bool = True) -> None:
        super().__init__(entities=("notes",))
        self.performs = performs
        self.performed: dict[str, tuple[str, str]] = {}
        self.log: list[tuple[str, str, dict[str, Any]]] = []

    def client(self, scope: Scope, http: Any, credentials: Mapping[str, Any]) -> MemoryClient:
        return Sending(self, scope) if self.performs else MemoryClient(self, scope)


@pytest.fixture
def app(engine) -> Iterator[tuple[Hub, Notes]]:
    Base.metadata.create_all(engine)
    provider = Notes()
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Note], providers=[provider])
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Team(id=1))
        s.flush()
        connections.connect(s, "ta", 1, SCOPE, provider=provider)
    yield hub, provider
    hub.uninstall()
    Base.metadata.drop_all(engine)


def queued(hub: Hub, state: str | None = None) -> list[tuple[str, str, str]]:
    with hub.session_factory() as s:
        return [(c.operation, c.local_type, c.local_id) for c in outbox.list_changes(s, state=state)]


def test_a_bad_request_is_refused_with_what_to_do_and_queues_nothing(app):
    hub, provider = app
    with hub.session_factory.begin() as s:
        note = Note(id=1, team_id=1, text="hello")
        s.add(note)
        s.flush()
        with pytest.raises(ConfigurationError, match=r"declares no action 'fax' on notes; it has: send"):
            request_action(s, note, "fax", provider=provider)
        with pytest.raises(ConfigurationError, match="must be JSON values"):
            request_action(s, note, "send", provider=provider, options={"at": dt.datetime(2026, 12, 7)})
        with pytest.raises(ConfigurationError, match="Team is not connected to memory"):
            request_action(s, Team(id=2), "send", provider=provider)
        s.add(Team(id=2))
        with pytest.raises(ConfigurationError, match="ta 2 has no memory connection that pushes notes"):
            request_action(s, Note(id=2, team_id=2, text="alone"), "send", provider=provider)
    assert queued(hub) == []  # only the row's own upsert, still in the journal: no action


def test_two_requests_while_one_waits_are_one_send_with_the_last_options(app):
    hub, provider = app
    with hub.session_factory.begin() as s:
        note = Note(id=1, team_id=1, text="hello")
        s.add(note)
        request_action(s, note, "send", provider=provider, options={"to": "first@acme.test"})
    with hub.session_factory.begin() as s:
        request_action(s, s.get(Note, 1), "send", provider=provider, options={"to": "second@acme.test"})
    assert queued(hub) == [("action", "ta_note:send", "1")]  # the second coalesced into the first
    hub.drain()
    (fid,) = {fid for _, fid, _ in provider.log}
    assert provider.log == [("create", fid, {"text": "hello"}), ("send", fid, {"to": "second@acme.test"})]
    assert queued(hub) == [] and queued(hub, "dead") == []


def test_explain_lists_a_performed_send_in_the_row_s_history(app):
    from connected_objects.cli.explain import describe
    from connected_objects.ops.explain import explain

    hub, provider = app
    with hub.session_factory.begin() as s:
        note = Note(id=1, team_id=1, text="hello")
        s.add(note)
        request_action(s, note, "send", provider=provider)
    hub.drain()
    entries = explain(hub, Note, 1).history
    assert [(e.operation, e.local_type, e.outcome) for e in entries] == [
        ("action", "ta_note:send", "ok"),
        ("create", "ta_note", "ok"),
    ]
    assert " push send ok in " in describe(entries[0])


def test_a_send_waits_behind_a_pending_edit_of_its_row(app):
    hub, provider = app
    with hub.session_factory.begin() as s:
        s.add(Note(id=1, team_id=1, text="draft"))
    hub.drain()
    with hub.session_factory.begin() as s:
        note = s.get(Note, 1)
        note.text = "final"
        s.flush()
        request_action(s, note, "send", provider=provider)
    hub.drain()
    assert [(what, payload) for what, _, payload in provider.log] == [
        ("create", {"text": "draft"}),
        ("update", {"text": "final"}),  # the edit reached the record before it was sent
        ("send", {}),
    ]


def test_a_row_never_pushed_gets_its_push_queued_before_the_send(app, engine):
    hub, provider = app
    with sessionmaker(engine).begin() as s:  # written without capture: no change of it is queued
        s.add(Note(id=1, team_id=1, text="older"))
    with hub.session_factory.begin() as s:
        request_action(s, s.get(Note, 1), "send", provider=provider)
    assert queued(hub) == [("action", "ta_note:send", "1")]
    hub.drain()
    assert [what for what, _, _ in provider.log] == ["create", "send"]


def test_a_client_that_cannot_perform_leaves_the_action_dead_saying_so(engine):
    Base.metadata.create_all(engine)
    provider = Notes(performs=False)
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Note], providers=[provider])
    hub.install()
    try:
        with hub.session_factory.begin() as s:
            s.add(Team(id=1))
            s.flush()
            connections.connect(s, "ta", 1, SCOPE, provider=provider)
            note = Note(id=1, team_id=1, text="hello")
            s.add(note)
            request_action(s, note, "send", provider=provider)
        hub.drain()
        with hub.session_factory() as s:
            (dead,) = outbox.list_changes(s, state="dead")
        assert dead.local_type == "ta_note:send"
        assert "client cannot perform actions (it has no perform()); upgrade the provider" in (dead.last_error or "")
        assert provider.creates == 1  # the note itself was pushed
    finally:
        hub.uninstall()
        Base.metadata.drop_all(engine)


def test_a_send_waits_for_an_edit_still_in_the_journal(app):
    hub, provider = app
    with hub.session_factory.begin() as s:
        s.add(Note(id=1, team_id=1, text="draft"))
    hub.drain()
    with hub.session_factory.begin() as s:
        note = s.get(Note, 1)
        note.text = "final"
        s.flush()
        request_action(s, note, "send", provider=provider)

    async def claim_without_folding_the_journal() -> list[Any]:
        async with hub.http_client() as http:
            with hub.session_factory.begin() as s:
                claimed = CHANGES.claim(s.connection(), "w")  # the edit is still in co_journal
            assert [c.local_type for c in claimed] == ["ta_note:send"]
            gate = ScopeGate(provider.limits(SCOPE), MemoryLimits(), scope=SCOPE)
            return await dispatch(hub, "w", SCOPE, claimed, http, gate)

    (outcome,) = asyncio.run(claim_without_folding_the_journal())
    assert outcome.status == "defer" and "waiting for ta_note 1 to be pushed first" in (outcome.error or "")
    assert [what for what, _, _ in provider.log] == ["create"]
    hub.drain()
    assert [what for what, _, _ in provider.log] == ["create", "update", "send"]


def test_an_action_on_a_row_deleted_before_it_was_pushed_is_dead_not_waiting_forever(app, engine):
    hub, provider = app
    plain = sessionmaker(engine)  # writes without capture: no change of the row is queued
    with plain.begin() as s:
        s.add(Note(id=1, team_id=1, text="gone soon"))
    with hub.session_factory.begin() as s:
        request_action(s, s.get(Note, 1), "send", provider=provider)
    with plain.begin() as s:
        s.delete(s.get(Note, 1))
    hub.drain()
    with hub.session_factory() as s:
        (dead,) = outbox.list_changes(s, state="dead")
    assert "ta_note 1 was deleted before its record was created" in (dead.last_error or "")
    assert provider.log == []
