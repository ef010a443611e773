"""Folding in what capture triggers recorded: their journal rows become changes, owners resolved.

The triggers of a model under ``capture="database"``
(:mod:`connected_objects.declare.triggers`) write one ``co_journal`` row per
statement (PostgreSQL) or per row (MariaDB, SQLite) naming the local type, the
operation, the applier's mark and each row's key and owners. A worker folds them
in with the flushes' rows (:func:`connected_objects.queue.journal.absorb`, given
:func:`resolver`), and this is where each row's owner meets its connections, with
the same rules and the same two queries as a flush (:mod:`connected_objects.push.routing`),
the applier's origin left out.

Example::

    >>> import datetime as dt
    >>> from connected_objects.push.captured import decode
    >>> decode('{"t":"note","o":"upsert","f":null,"r":[["1","7"]]}', dt.datetime(2026, 12, 7)).rows
    [['1', '7']]
    >>> decode('[["memory","test","acme","notes","note","upsert",["1"]]]', dt.datetime(2026, 12, 7)) is None
    True
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import inspect

from ..declare import SyncSpec
from ..declare import specs_of
from ..declare.triggers import CaptureTriggers
from ..declare.triggers import captured_models
from ..declare.triggers import column_of
from ..queue.changes import Change
from ..queue.journal import Resolver
from ..scope import Scope
from .routing import route

__all__ = ["Captured", "decode", "resolver", "route_captured"]


@dataclass(frozen=True)
class Captured:
    """What one trigger row recorded: rows of one local type, one operation, one origin."""

    local_type: str
    operation: str
    origin: str | None
    #: Per row: its primary key, then its owner columns (as :attr:`CaptureTriggers.owners` orders them).
    rows: Sequence[Sequence[str | None]]
    at: dt.datetime


def decode(blob: str, at: dt.datetime) -> Captured | None:
    """A journal row written by the triggers, or None for one written by the ORM's capture."""
    if not blob.startswith("{"):
        return None
    item = json.loads(blob)
    return Captured(item["t"], item["o"], item.get("f"), item["r"], at)


def route_captured(
    conn: Connection, captured: Sequence[Captured], specs: Mapping[str, Sequence[SyncSpec]]
) -> list[Change]:
    """The changes the triggers' rows make, in their order, owners resolved to connections as a flush's are.

    ``specs`` gives each local type's specs (a hub's). Rows of a local type no spec names are dropped:
    its model is no longer connected. Two queries per origin (the owners' connections, the deleted
    rows' links), whatever the number of rows.
    """
    owner_at: dict[int, int] = {}  # per spec: where its owner is in a row

    def owner_index(spec: SyncSpec) -> int:
        found = owner_at.get(id(spec))
        if found is None:
            owners = CaptureTriggers.of(spec.model).owners
            found = owner_at[id(spec)] = (
                owners.index(column_of(inspect(spec.model), spec.owner)) + 1 if spec.owner is not None else 0
            )
        return found

    entries: list[tuple[Captured, SyncSpec, str]] = []
    items: dict[str | None, list[tuple[SyncSpec, str, str | None, str]]] = {}
    for item in captured:
        for spec in specs.get(item.local_type, ()):
            where = owner_index(spec)
            for row in item.rows:
                local_id = row[0]
                if local_id is not None:
                    entries.append((item, spec, local_id))
                    items.setdefault(item.origin, []).append((spec, local_id, row[where], item.operation))
    cache: dict[tuple[str, str], Any] = {}
    targets: dict[tuple[str | None, str, str, str, str], list[Scope]] = {}
    for origin_text, routed in items.items():
        for (scope, entity, local_type, op), ids in route(conn, routed, _origin(origin_text), cache=cache).items():
            for local_id in ids:
                targets.setdefault((origin_text, entity, local_type, op, local_id), []).append(scope)
    names = {text_: _name(_origin(text_)) for text_ in items}  # the outbox's origin: the provider
    changes: list[Change] = []
    for item, spec, local_id in entries:
        origin_name = names[item.origin]
        key = (item.origin, spec.entity, spec.local_type, item.operation, local_id)
        for scope in targets.get(key, ()):
            changes.append(
                Change(scope, spec.entity, spec.local_type, local_id, item.operation, origin_name, item.at)  # type: ignore[arg-type]
            )
    return changes


def resolver(models: Iterable[type]) -> Resolver:
    """What :func:`connected_objects.queue.journal.absorb` needs to fold the triggers' rows of ``models``."""
    specs: dict[str, list[SyncSpec]] = {}
    for model in captured_models(models):
        for spec in specs_of(model):
            specs.setdefault(spec.local_type, []).append(spec)

    def resolve(conn: Connection, rows: Sequence[tuple[str, dt.datetime]]) -> list[Change]:
        captured = [found for blob, at in rows if (found := decode(blob, at)) is not None]
        return route_captured(conn, captured, specs)

    return resolve


def _name(origin: Scope | str | None) -> str | None:
    return origin.provider if isinstance(origin, Scope) else origin


def _origin(text_: str | None) -> Scope | str | None:
    if not text_:
        return None
    parts = text_.split("/", 2)
    return Scope(*parts) if len(parts) == 3 else text_
