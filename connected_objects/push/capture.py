"""Change capture: the only place connected-objects installs SQLAlchemy listeners.

:func:`install` hooks a session factory (a ``sessionmaker``, a ``Session``
subclass or instance, an ``AsyncSession`` subclass or instance). From then on,
every flush of a session it makes records, for each new, changed or deleted
instance of a :func:`~connected_objects.declare.connected` model, one
*change* per target scope: one ``INSERT`` of one ``co_journal`` row per flush
(:mod:`connected_objects.queue.journal`), on the flush's own connection, so the
changes commit or roll back with your data. Nothing is sent from inside a
flush; workers fold the journal into ``co_outbox`` and push after commit.

- An update that changes none of the mapping's fields writes nothing.
- Repeated changes to one object coalesce into its pending outbox change.
- The target scopes are the owner's active connections to the provider (one
  ``SELECT`` per flush, cached for the transaction). Deletes also go to every
  scope where the row is linked.
- ORM bulk ``update()``/``delete()`` statements on a connected model are
  captured: the matching primary keys are read (and locked, on PostgreSQL and
  MariaDB) before the statement runs. ORM bulk ``insert()`` is refused with
  :class:`~connected_objects.exceptions.CaptureError`. Pass
  ``execution_options(connected_objects_capture=False)`` to run one knowingly
  without capture. Core ``connection.execute()`` and raw SQL are invisible.
- Inside :func:`applying`, changes are not sent back to the scope (or
  provider) they came from; they still go everywhere else.
- Rows the applier writes with Core statements (:mod:`connected_objects.receive.direct`)
  are recorded by :func:`record_written`, as a flush of the same change would
  be, under the same rules.

Example::

    >>> from sqlalchemy import ForeignKey, Integer, String, create_engine, select
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker
    >>> from connected_objects import Scope, capture, connections
    >>> from connected_objects.queue import journal
    >>> from connected_objects.declare import connected
    >>> from connected_objects.declare.mapping import FieldMapping
    >>> from connected_objects.store.models import metadata, outbox
    >>> from connected_objects.testing import MemoryProvider
    >>> class Base(DeclarativeBase): pass
    >>> class Org(Base):
    ...     __tablename__ = "org"
    ...     id = mapped_column(Integer, primary_key=True)
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="org_id")
    ... class Note(Base):
    ...     __tablename__ = "note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     org_id = mapped_column(ForeignKey("org.id"))
    ...     text = mapped_column(String(100))
    >>> engine = create_engine("sqlite://")
    >>> Base.metadata.create_all(engine); metadata.create_all(engine)
    >>> Session = sessionmaker(engine)
    >>> capture.install(Session)
    >>> with Session.begin() as s:
    ...     s.add(Org(id=1))
    ...     _ = connections.connect(s, "org", 1, Scope("memory", "test", "acme"), provider=MemoryProvider())
    ...     s.add(Note(id=5, org_id=1, text="hello"))
    >>> with Session.begin() as s:  # what a worker does before it claims
    ...     journal.absorb(s)
    ...     s.execute(select(outbox.c.local_id, outbox.c.operation)).all()
    1
    [('5', 'upsert')]
    >>> capture.uninstall(Session)
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session
from sqlalchemy.orm import UOWTransaction
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import NO_VALUE

from .. import connections
from ..declare import SyncSpec
from ..declare import specs_of
from ..declare import triggers
from ..exceptions import CaptureError
from ..exceptions import ConfigurationError
from ..queue.journal import append_groups
from ..scope import Scope
from ..store.identity import local_key
from .routing import route

__all__ = [
    "ORIGIN_KEY",
    "SKIP_OPTION",
    "TRIGGERS_KEY",
    "applying",
    "capturing",
    "install",
    "installed",
    "listeners",
    "record_written",
    "uninstall",
]

#: ``Session.info`` key naming the scope (or provider) whose record is being applied.
ORIGIN_KEY = "connected_objects.origin"
#: ``Session.info`` key set by a hub with models under ``capture="database"``: the applier marks its transactions.
TRIGGERS_KEY = "connected_objects.capture_triggers"
#: Execution option that runs an ORM bulk statement without capture.
SKIP_OPTION = "connected_objects_capture"

_LISTENERS: tuple[tuple[str, Any], ...] = ()  # filled below, after the functions exist
_spec_cache: dict[type, tuple[SyncSpec, ...]] = {}


def _target(target: Any) -> Any:
    if isinstance(target, AsyncSession):
        return target.sync_session
    if isinstance(target, type) and issubclass(target, AsyncSession):
        if target.sync_session_class is Session:
            raise ConfigurationError(
                f"{target.__name__} uses the global Session class; give it sync_session_class=YourSession "
                "(a Session subclass) and install capture there"
            )
        return target.sync_session_class
    if isinstance(target, (sessionmaker, Session)) or (isinstance(target, type) and issubclass(target, Session)):
        if target is Session:
            raise ConfigurationError(
                "capture.install(Session) would capture every session of the process; "
                "install it on your sessionmaker or a Session subclass"
            )
        return target
    raise ConfigurationError(
        f"capture.install() takes a sessionmaker, a Session subclass or instance, or an AsyncSession; got {target!r}. "
        "For async_sessionmaker, give it sync_session_class=YourSession and install on YourSession."
    )


def install(target: Any) -> None:
    """Capture changes of connected models in every session ``target`` makes. Idempotent."""
    where = _target(target)
    for name, fn in _LISTENERS:
        if not event.contains(where, name, fn):
            event.listen(where, name, fn)


def uninstall(target: Any) -> None:
    """Remove exactly what :func:`install` added."""
    where = _target(target)
    for name, fn in _LISTENERS:
        if event.contains(where, name, fn):
            event.remove(where, name, fn)


def capturing(session: Session) -> bool:
    """Whether capture is installed on ``session`` (or the factory that made it)."""
    return any(fn is _after_flush for fn in session.dispatch.after_flush)


def listeners() -> tuple[Any, ...]:
    """The functions :func:`install` adds (so a check for foreign listeners can leave them out)."""
    return tuple(fn for _, fn in _LISTENERS)


def record_written(
    session: Session, model: type, rows: Sequence[tuple[str, Mapping[str, Any], Collection[str] | None]]
) -> None:
    """Capture rows of ``model`` written with Core statements, as a flush of the same change would.

    Each item is ``(local_id, values, changed)``: the row's values after the write (its owner
    attribute at least) and the attributes the write changed, None for a new row. An update that
    changed none of a spec's fields is not captured for it; inside :func:`applying` nothing goes
    back to the origin. Does nothing where capture is not installed.
    """
    if not capturing(session):
        return
    items: list[tuple[SyncSpec, str, str | None, str]] = []
    for spec in _specs(model):
        fields = spec.fields
        for local_id, values, changed in rows:
            if changed is not None and fields and fields.isdisjoint(changed):
                continue
            owner = values.get(spec.owner) if spec.owner is not None else local_id
            items.append((spec, local_id, None if owner is None else str(owner), "upsert"))
    if items:
        _record(session, items)


def installed(target: Any) -> bool:
    """Whether capture is installed on ``target``."""
    where = _target(target)
    return all(event.contains(where, name, fn) for name, fn in _LISTENERS)


@contextlib.contextmanager
def applying(session: Session | AsyncSession, origin: Scope | str) -> Iterator[None]:
    """Within the block, changes are not sent back to ``origin`` (a scope, or a whole provider).

    Where the hub has a model declared with ``capture="database"``, a ``Session`` of its factory is
    also marked for the triggers (:func:`connected_objects.declare.triggers.mark`) while the
    block runs; an ``AsyncSession`` is not marked, so write such models with a ``Session``.

    A ``Session`` is flushed when the block ends, so what it changed is captured
    with the origin. With an ``AsyncSession``, ``await session.flush()`` before
    leaving the block; unflushed changes there raise :class:`CaptureError`.
    """
    info = session.info
    previous = info.get(ORIGIN_KEY)
    info[ORIGIN_KEY] = origin
    marked = session if isinstance(session, Session) and session.info.get(TRIGGERS_KEY) else None
    if marked is not None:
        triggers.mark(marked.connection(), origin)
    try:
        yield
        if isinstance(session, Session):
            session.flush()
        elif session.new or session.dirty or session.deleted:
            raise CaptureError(
                "unflushed changes at the end of capture.applying(); await session.flush() inside the block"
            )
    finally:
        if marked is not None:
            try:
                triggers.unmark(marked.connection())
            except Exception:
                # never leave a mark on a pooled connection (MariaDB keeps it for the session): throw it away
                with contextlib.suppress(Exception):
                    marked.connection().invalidate()
                raise
        if previous is None:
            info.pop(ORIGIN_KEY, None)
        else:
            info[ORIGIN_KEY] = previous


def _specs(cls: type) -> tuple[SyncSpec, ...]:
    """The specs the ORM captures for ``cls``: those under ``capture="database"`` are the triggers' to record."""
    try:
        return _spec_cache[cls]
    except KeyError:
        found = _spec_cache[cls] = tuple(spec for spec in specs_of(cls) if spec.capture == "orm")
        return found


def _watched(spec: SyncSpec) -> frozenset[str] | None:
    """The attributes whose change makes ``spec`` push: its fields and the relationships that
    move them; None for "any attribute" (a mapping without declared fields)."""
    found = _watch_cache.get(id(spec), False)
    if found is False:
        found = _watch_cache[id(spec)] = (spec.fields | _trigger_keys(spec)) if spec.fields else None
    return found  # type: ignore[return-value]


_watch_cache: dict[int, frozenset[str] | bool | None] = {}


def _touches(state: InstanceState[Any], current: dict[str, Any], watch: frozenset[str] | None) -> bool:
    """Whether a flushed update changed a watched attribute (a value set back to itself did not)."""
    for key, old in state.committed_state.items():
        if (watch is None or key in watch) and (old is NO_VALUE or key not in current or current[key] != old):
            return True
    return False


_trigger_cache: dict[int, frozenset[str]] = {}


def _trigger_keys(spec: SyncSpec) -> frozenset[str]:
    """Relationship keys whose change moves one of the spec's foreign-key fields."""
    found = _trigger_cache.get(id(spec))
    if found is None:
        mapper: Mapper[Any] = inspect(spec.model)
        names = set()
        for rel in mapper.relationships:
            columns = {mapper.get_property_by_column(c).key for c in rel.local_columns if c in mapper.columns.values()}
            if columns & spec.fields:
                names.add(rel.key)
        found = _trigger_cache[id(spec)] = frozenset(names)
    return found


def _local_id(spec: SyncSpec, state: InstanceState[Any]) -> str | None:
    if len(spec.pk_attributes) == 1:
        value = state.dict.get(spec.pk_attributes[0])
        if value is None:
            return None if state.key is None else str(state.key[1][0])
        return value if isinstance(value, str) else str(value)
    values: tuple[Any, ...] = tuple(state.dict.get(name) for name in spec.pk_attributes)
    if any(v is None for v in values):
        if state.key is None:
            return None
        values = tuple(state.key[1])
    return local_key(values[0] if len(values) == 1 else values)


def _owner_id(spec: SyncSpec, state: InstanceState[Any], local_id: str) -> str | None:
    if spec.owner is None:
        return local_id
    value = state.dict.get(spec.owner)
    if value is None:
        value = state.committed_state.get(spec.owner)
    if value is None or value is NO_VALUE:
        return None
    return str(value)


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    # The hot path of every application write: one pass, cached per-class facts, no per-row query.
    items: list[tuple[SyncSpec, str, str | None, str]] = []
    add = items.append
    cached = _spec_cache.get
    for kind, objects in (("upsert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        operation = "upsert" if kind == "update" else kind
        updating = kind == "update"
        for obj in objects:
            specs = cached(obj.__class__)
            if specs is None:
                specs = _specs(obj.__class__)
            if not specs:
                continue
            state = instance_state(obj)
            current = state.dict
            for spec in specs:
                if updating and not _touches(state, current, _watched(spec)):
                    continue
                pk = spec.pk_attributes
                value = current.get(pk[0]) if len(pk) == 1 else None
                if value is None:
                    local_id = _local_id(spec, state)
                    if local_id is None:
                        continue
                else:
                    local_id = value if value.__class__ is str else str(value)
                owner = current.get(spec.owner) if spec.owner is not None else local_id
                if owner is None:
                    add((spec, local_id, _owner_id(spec, state, local_id), operation))
                else:
                    add((spec, local_id, owner if owner.__class__ is str else str(owner), operation))
    if items:
        _record(session, items)


def _record(session: Session, items: Sequence[tuple[SyncSpec, str, str | None, str]]) -> None:
    """Append the changes for ``(spec, local_id, owner_id, operation)`` items to the journal."""
    origin = session.info.get(ORIGIN_KEY)
    conn = session.connection()
    groups = route(conn, items, origin, cache=session.info.setdefault(connections.CACHE_KEY, {}))
    if groups:
        append_groups(conn, groups, origin.provider if isinstance(origin, Scope) else origin)


def _do_orm_execute(state: ORMExecuteState) -> Any:
    if not (state.is_update or state.is_delete or state.is_insert):
        return None
    if state.execution_options.get(SKIP_OPTION, True) is False:
        return None
    mapper = state.bind_mapper
    if mapper is None:
        return None
    specs = _specs(mapper.class_)
    if not specs:
        return None
    if state.is_insert:
        raise CaptureError(
            f"ORM bulk INSERT into connected model {mapper.class_.__name__} cannot be captured; "
            "add the objects with session.add_all(), or pass "
            f"execution_options({SKIP_OPTION}=False) and enqueue the changes yourself"
        )
    statement: Any = state.statement
    session = state.session
    pk_cols = list(mapper.primary_key)
    owner_cols = {spec.owner for spec in specs if spec.owner is not None}
    columns = [*pk_cols, *(mapper.columns[name] for name in owner_cols)]
    query = select(*columns).where(*statement._where_criteria)
    conn = session.connection(bind_arguments={"mapper": mapper})
    if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
        query = query.with_for_update()
    rows = conn.execute(query).all()
    op = "delete" if state.is_delete else "upsert"
    items: list[tuple[SyncSpec, str, str | None, str]] = []
    n = len(pk_cols)
    for row in rows:
        local_id = local_key(row[0] if n == 1 else tuple(row[:n]))
        values = dict(zip(owner_cols, row[n:], strict=True))
        for spec in specs:
            if op == "upsert" and spec.fields and not _bulk_touches(spec, statement):
                continue
            owner = local_id if spec.owner is None else values.get(spec.owner)
            items.append((spec, local_id, None if owner is None else str(owner), op))
    result = state.invoke_statement()
    if items:
        _record(session, items)
    return result


def _bulk_touches(spec: SyncSpec, statement: Any) -> bool:
    params = getattr(statement, "_values", None) or {}
    names = set()
    for key in params:
        names.add(getattr(key, "key", None) or str(key))
    return bool(names & spec.fields) or not names


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(connections.CACHE_KEY, None)


_LISTENERS = (
    ("after_flush", _after_flush),
    ("do_orm_execute", _do_orm_execute),
    ("after_transaction_end", _after_transaction_end),
)
