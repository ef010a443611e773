"""Why is this row (not) synced? One local row, every scope it goes to, in one sentence.

:func:`explain` takes a hub, a connected model and a primary key, and gathers
what the library knows about that row: its links in every scope (from the
identity map), the scopes its owner is connected to, its pending, in-flight
and dead changes, their last errors and next attempts, and the references it
waits for. :attr:`Explanation.sentence` says it in one line::

    synced to 2 scopes, nothing pending
    waiting for its Customer reference to be created in quickbooks/production/9130354
    dead: quickbooks refused it: Duplicate Name Exists Error (6240)

Each scope also says when the row's entity was last reconciled there and what
that found (:mod:`connected_objects.receive.reconcile`), naming the kinds whose
examples list this row.

:attr:`Explanation.history` holds the row's last pushes and applies, newest first, with their
outcomes and the providers' (redacted) messages (:mod:`connected_objects.store.history`): what
happened to it, where the sentence says where it stands.

The CLI prints it (``connected-objects explain --app myapp.sync:hub Invoice 42``)
and the admin pages show it. Reading it costs a fixed number of queries per
provider the model syncs to, whatever the size of the tables.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope, connections
    >>> from connected_objects.ops.explain import explain
    >>> from connected_objects.testing.invoicing import Base, Customer, Invoice, Organization, make_hub
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine); Base.metadata.create_all(engine)
    >>> hub = make_hub(engine, "http://sandbox.invalid")
    >>> with hub.session_factory.begin() as session:
    ...     _ = connections.connect(session, "organization", 1, Scope("sandbox", "test", "acme"))
    ...     session.add(Organization(id=1, name="Acme"))
    ...     session.add(Customer(id=7, organization_id=1, name="Ada"))
    ...     session.add(Invoice(id=42, organization_id=1, customer_id=7, number="INV-42"))
    >>> found = explain(hub, Invoice, 42)
    >>> found.sentence
    'waiting for its Customer reference to be created in sandbox/test/acme'
    >>> found.history  # nothing pushed or applied yet
    []
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any
from typing import Protocol
from typing import get_args

from sqlalchemy import inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from .. import connections
from ..declare import SyncSpec
from ..declare import specs_of
from ..exceptions import ConfigurationError
from ..exceptions import ConnectedObjectsError
from ..plugin.entities import catalog_of
from ..queue import ClaimedChange
from ..queue import actions as queued_actions
from ..queue import outbox
from ..scope import Scope
from ..states import Drift
from ..store import history as sync_history
from ..store import identity
from ..store.history import Entry
from ..store.identity import ConnectedObject
from ..store.identity import local_key
from ..store.identity import local_type_name
from ..store.models import utcnow
from ..util.redaction import redact
from .schedules import Schedule
from .schedules import schedules

__all__ = ["Application", "Explanation", "ScopeExplanation", "explain", "find_model", "primary_key"]


class Application(Protocol):
    """What :func:`explain` needs of an application (a :class:`~connected_objects.Hub` has it)."""

    @property
    def models(self) -> Sequence[type]:
        """The ``@connected`` models."""
        ...

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on the application's database."""
        ...


@dataclass(frozen=True)
class ScopeExplanation:
    """What one scope knows of the row."""

    scope: Scope
    #: The connection's status (``active``, ``paused``, ``revoked``), None when the scope has none.
    connection: str | None
    connection_reason: str | None
    link: ConnectedObject | None
    changes: Sequence[ClaimedChange]
    #: Referenced rows not linked in this scope yet, as ``(model name, local id)``.
    missing: Sequence[tuple[str, str]]
    sentence: str
    synced: bool
    #: When the row's entity was last reconciled in this scope (None: never), what that found per kind
    #: (:data:`~connected_objects.states.Drift`), and the kinds whose examples name this row or its record.
    reconciled_at: dt.datetime | None = None
    reconcile: Mapping[str, int] | None = None
    reconcile_named: Sequence[str] = ()
    #: The actions queued on the row here (an invoice's ``send``): waiting, in flight or dead with the
    #: provider's message (:mod:`connected_objects.push.actions`).
    actions: Sequence[ClaimedChange] = ()

    @property
    def next_attempt_at(self) -> dt.datetime | None:
        """When the row's next change is tried (None: nothing waits)."""
        waiting = [c.next_attempt_at for c in self.changes if c.state != "dead"]
        return min(waiting) if waiting else None

    @property
    def last_error(self) -> str | None:
        """The newest change's last error (redacted)."""
        errors = [c.last_error for c in self.changes if c.last_error]
        return redact(errors[-1]) if errors else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        link = self.link
        return {
            "scope": str(self.scope),
            "connection": self.connection,
            "link": None
            if link is None
            else {"entity": link.entity, "foreign_id": link.foreign_id, "status": link.status},
            "changes": [c.as_dict() for c in self.changes],
            "actions": [c.as_dict() for c in self.actions],
            "missing": [f"{name} {lid}" for name, lid in self.missing],
            "next_attempt_at": None if self.next_attempt_at is None else self.next_attempt_at.isoformat(),
            "last_error": self.last_error,
            "synced": self.synced,
            "sentence": self.sentence,
            "reconciled_at": None if self.reconciled_at is None else self.reconciled_at.isoformat(),
            "reconcile": None if self.reconcile is None else dict(self.reconcile),
            "reconcile_named": list(self.reconcile_named),
        }


@dataclass(frozen=True)
class Explanation:
    """Everything about one local row, and the sentence that sums it up."""

    model: str
    local_type: str
    local_id: str
    exists: bool
    scopes: Sequence[ScopeExplanation] = field(default_factory=list)
    #: The providers the model syncs to.
    providers: Sequence[str] = ()
    #: The row's last pushes and applies in every scope, newest first.
    history: Sequence[Entry] = ()

    @property
    def sentence(self) -> str:
        """Why the row is or is not synced, in one sentence."""
        if not self.scopes:
            if not self.exists:
                return f"no {self.model} {self.local_id}: the row does not exist and was never synced"
            return f"not synced anywhere: its owner has no connection to {' or '.join(self.providers)}"
        stuck = [s for s in self.scopes if not s.synced]
        if not stuck:
            n = len(self.scopes)
            return f"synced to {n} scope{'s' if n != 1 else ''}, nothing pending"
        first = stuck[0].sentence
        return first if len(stuck) == 1 else f"{first} (and {len(stuck) - 1} more scope(s) not synced)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "model": self.model,
            "local_type": self.local_type,
            "local_id": self.local_id,
            "exists": self.exists,
            "sentence": self.sentence,
            "scopes": [s.as_dict() for s in self.scopes],
            "history": [e.as_dict() for e in self.history],
        }


def find_model(hub: Application, name: str) -> type:
    """One of the hub's connected models, by class name, table name or ``module:Class``.

    The name usually comes from outside (a URL's query, a command line), so it is only ever
    *compared* with the hub's own ``@connected`` models: nothing is imported, whatever it names.
    ``module:Class`` must be a model's ``__module__`` and ``__qualname__``; a relative or empty
    part (``..:x``, ``.x:y``, ``:x``) is refused.

    :raises ConfigurationError: naming the models the hub knows.
    """
    known = ", ".join(sorted(m.__name__ for m in hub.models)) or "none"
    if ":" in name:
        module_name, _, attr = name.partition(":")
        parts = module_name.split(".")
        if not attr or not all(p.isidentifier() for p in parts) or not all(p.isidentifier() for p in attr.split(".")):
            raise ConfigurationError(
                f"{name!r} is not module:Class with an absolute module and a class name (the hub has: {known})"
            )
        for model in hub.models:
            if (model.__module__, model.__qualname__) == (module_name, attr) and specs_of(model):
                return model
        raise ConfigurationError(f"{name!r} is not one of the hub's connected models (it has: {known})")
    for model in hub.models:
        if name and name in (model.__name__, local_type_name(model)):
            return model
    raise ConfigurationError(f"the hub has no connected model called {name!r} (it has: {known}); or give module:Class")


def _int_bits(column: Any, dialect: str | None) -> int:
    """How wide an integer key column is: SMALLINT 16, INTEGER 32, BIGINT 64 bits on the servers;
    SQLite's INTEGER holds 64 bits whatever the declared type."""
    from sqlalchemy import types

    kind = column.type
    if isinstance(kind, types.BigInteger) or dialect == "sqlite":
        return 64
    if isinstance(kind, types.SmallInteger):
        return 16
    return 32


def primary_key(model: type, text: str, dialect: str | None = None) -> Any:
    """``text`` as the model's primary key value: converted to the key column's Python type, and for
    a composite key split on commas. An integer outside its column's range (a 20-digit id) is refused
    here rather than by the database driver; ``dialect`` (the engine's ``dialect.name``) says how wide
    an ``Integer`` column is (SQLite's are 64-bit).

    :raises ConfigurationError: when it does not convert, or is out of range.
    """
    columns: list[Any] = list(inspect(model).primary_key)
    parts = text.split(",") if len(columns) > 1 else [text]
    if len(parts) != len(columns):
        raise ConfigurationError(f"{model.__name__} has a {len(columns)}-column key: give {len(columns)} values a,b")
    values = []
    for column, part in zip(columns, parts, strict=True):
        try:
            kind = column.type.python_type
        except NotImplementedError:
            kind = str
        if kind is int and len(part.strip()) > 40:
            raise ConfigurationError(f"{part[:40]!r}... is not a valid {model.__name__} key (int)")
        try:
            value = kind(part) if kind is not str else part
        except (TypeError, ValueError):
            raise ConfigurationError(f"{part!r} is not a valid {model.__name__} key ({kind.__name__})") from None
        if kind is int:
            bits = _int_bits(column, dialect)
            if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                raise ConfigurationError(
                    f"{part!r} is out of range for {model.__name__}'s key (a {bits}-bit integer column)"
                )
        values.append(value)
    return values[0] if len(values) == 1 else tuple(values)


def explain(hub: Application, model: type, pk: Any, *, history: int = 10) -> Explanation:
    """What the library knows about the ``model`` row with primary key ``pk`` (see the module docstring),
    with its ``history`` last pushes and applies."""
    specs = specs_of(model)
    if not specs:
        raise ConfigurationError(f"{model.__name__} is not decorated with @connected")
    local_type = local_type_name(model)
    local_id = local_key(pk)
    by_type = {local_type_name(m): m.__name__ for m in hub.models}
    with hub.session_factory() as session:
        row = session.get(model, pk)
        conn = session.connection()
        links = {link.scope: link for link in identity.links_of(conn, local_type, local_id)}
        wanted: dict[Scope, tuple[SyncSpec | None, connections.ConnectionInfo | None]] = {}
        for each in specs:
            owner = each.owner_key(row) if row is not None else None
            if owner is None:
                continue
            found = connections.for_owners(conn, each.provider, each.owner_type, [owner], include_revoked=True)
            for info in found.get(owner, []):
                wanted[info.scope] = (each, info)
        for scope in links:
            if scope not in wanted:
                spec = next((s for s in specs if s.provider == scope.provider), None)
                wanted[scope] = (spec, connections.get(conn, scope))
        changes = outbox.changes_of(conn, local_type, local_id, list(wanted))
        acted = queued_actions.of_row(conn, local_type, local_id, list(wanted))
        missing = _missing_references(session, row, wanted, by_type)
        entries = sync_history.recent(conn, local_type, local_id, limit=history) if history > 0 else []
        if history > 0:  # its actions' entries (``invoice:send``) are the row's history too
            for kind in _action_types(hub, specs, local_type):
                entries += sync_history.recent(conn, kind, local_id, limit=history)
            entries = sorted(entries, key=lambda e: e.id or 0, reverse=True)[:history]
        reconciled = {
            (scope, s.entity): s
            for scope, entities in schedules(conn, now=utcnow(), scopes=list(wanted)).items()
            for s in entities
            if s.reconciled_at is not None
        }
        session.rollback()
    scopes = []
    for scope in sorted(wanted, key=str):
        spec, info = wanted[scope]
        mine = [c for c in changes if c.scope == scope]
        found = _scope(scope, info, links.get(scope), mine, missing.get(scope, []), row is not None)
        last = reconciled.get((scope, spec.entity)) if spec is not None else None
        found = _with_reconcile(found, last, local_id) if last is not None else found
        mine_acted = [c for c in acted if c.scope == scope]
        if mine_acted:  # the row's own state first, then each action's ("; send dead: …")
            told = "; ".join(redact(queued_actions.describe(c)) for c in mine_acted)
            found = replace(found, actions=mine_acted, sentence=f"{found.sentence}; {told}", synced=False)
        scopes.append(found)
    providers = tuple(dict.fromkeys(spec.provider for spec in specs))
    return Explanation(model.__name__, local_type, local_id, row is not None, scopes, providers, entries)


def _action_types(hub: Application, specs: Sequence[SyncSpec], local_type: str) -> list[str]:
    """The outbox and history ``local_type`` of every action the row's providers declare on its entities."""
    provider_of = getattr(hub, "provider", None)  # a Hub has it; a bare Application may not
    if provider_of is None:
        return []
    kinds: list[str] = []
    for spec in specs:
        try:
            catalog = catalog_of(provider_of(spec.provider))
        except ConnectedObjectsError:  # a provider no longer installed: its history is still the row's own
            continue
        if catalog is not None and spec.entity in catalog:
            kinds += [queued_actions.object_type(local_type, a) for a in catalog[spec.entity].actions]
    return list(dict.fromkeys(kinds))


def _with_reconcile(found: ScopeExplanation, last: Schedule, local_id: str) -> ScopeExplanation:
    """``found`` with its entity's last reconcile: when, its counts, and the kinds whose examples name this row
    (by local id) or its record (by foreign id)."""
    ids = {local_id} | ({found.link.foreign_id} if found.link is not None else set())
    report = last.reconcile_report if isinstance(last.reconcile_report, dict) else {}
    examples = report.get("examples") or {}
    return replace(
        found,
        reconciled_at=last.reconciled_at,
        reconcile={kind: int(report.get(kind) or 0) for kind in get_args(Drift)},
        reconcile_named=[kind for kind in get_args(Drift) if ids & set(examples.get(kind) or ())],
    )


def _missing_references(
    session: Session,
    row: Any,
    wanted: dict[Scope, tuple[SyncSpec | None, connections.ConnectionInfo | None]],
    by_type: dict[str, str],
) -> dict[Scope, list[tuple[str, str]]]:
    """Per scope, the rows ``row`` references that have no link there (one lookup per scope and type)."""
    missing: dict[Scope, list[tuple[str, str]]] = {}
    if row is None:
        return missing
    conn = session.connection()
    for scope, (spec, _) in wanted.items():
        references = dict(getattr(spec.mapping, "references", {}) or {}) if spec is not None else {}
        for ref in references.values():
            value = getattr(row, ref.attribute, None)
            if value is None:
                continue
            if identity.resolve_local(conn, scope, ref.local_type, value) is None:
                missing.setdefault(scope, []).append((by_type.get(ref.local_type, ref.local_type), local_key(value)))
    return missing


def _scope(
    scope: Scope,
    info: connections.ConnectionInfo | None,
    link: ConnectedObject | None,
    changes: list[ClaimedChange],
    missing: list[tuple[str, str]],
    exists: bool,
) -> ScopeExplanation:
    status = info.status if info is not None else None
    reason = redact(info.status_reason) if info is not None else None

    def made(sentence: str, synced: bool = False) -> ScopeExplanation:
        return ScopeExplanation(scope, status, reason, link, changes, missing, sentence, synced)

    dead = [c for c in changes if c.state == "dead"]
    waiting = [c for c in changes if c.state != "dead"]
    if dead and not waiting:
        change = dead[-1]
        error = redact(change.last_error) or "no message"
        if change.refusals:
            return made(f"dead: {scope.provider} refused it: {error}")
        return made(f"dead after {change.attempts} attempt(s) in {scope}: {error}")
    if status is None:
        return made(f"{scope} has no connection any more; its link stays as it was")
    if status != "active":
        return made(f"the connection to {scope} is {status}" + (f" ({reason})" if reason else ""))
    if missing:
        names = ", ".join(sorted({name for name, _ in missing}))
        plural = "references" if len({name for name, _ in missing}) > 1 else "reference"
        return made(f"waiting for its {names} {plural} to be created in {scope}")
    if waiting:
        change = waiting[0]
        if change.state == "in_flight":
            return made(f"being pushed to {scope} now (attempt {change.attempts})")
        when = min(c.next_attempt_at for c in waiting)
        last = redact(change.last_error)
        tail = f"; last error: {last}" if last else ""
        return made(f"{change.operation} pending for {scope}, next attempt at {when:%Y-%m-%d %H:%M:%S} UTC{tail}")
    if link is None:
        if not exists:
            return made(f"deleted locally; nothing was ever pushed to {scope}", synced=True)
        return made(f"never pushed to {scope}: no change is queued (edit the row or backfill it)")
    if not link.linked:
        return made(f"its record in {scope} was deleted (tombstoned link)", synced=not exists)
    return made(f"synced to {scope}", synced=True)
