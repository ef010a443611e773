"""Queued actions: "send this invoice to the customer", recorded in your transaction, done once.

Some things an application asks of a provider are not a record's state but an
*action* on it: QuickBooks emails an invoice (``POST …/invoice/{id}/send``), Xero
too (``POST …/Invoices/{id}/Email``). Called bare from a request handler, such a
call goes out before the transaction that made the invoice commits (or after it
rolled back), before the invoice exists at the provider, and a lost answer leaves
you to choose between emailing the customer twice and not at all.
:func:`request_action` queues it instead, through the outbox:

- **In your transaction.** It writes one outbox change (operation ``action``, its
  own object ``invoice:send``, options in ``co_outbox.options``: see
  :mod:`connected_objects.queue.actions` for why that column) on the session's
  connection: a rolled-back transaction queues nothing, and nothing leaves
  before the commit.
- **After the record exists.** The worker performs it only once the row is
  linked to its remote record and no change of the row is waiting or in flight:
  queued in the same transaction as a new invoice, the send waits (deferred,
  "waiting for …") until the create is pushed and linked, and after a later
  edit of the invoice until that edit is pushed (edits still in the journal
  count). A row that is not linked and has no change queued gets its push queued;
  one whose push is dead holds the action until that change is retried
  (``blocked``, as a change waiting for a dead reference is). A row deleted since,
  or whose record was deleted at the provider, leaves the action dead: there is
  nothing to act on.
- **Exactly once.** Its idempotency key is derived from the change (and its
  refusal count) and recorded on the change, with the options and the record's
  id, *before* the call leaves (the change's ``in_doubt``); a call whose answer is
  lost is repeated with that very key and options, and the provider (QuickBooks'
  ``requestid``, Xero's ``Idempotency-Key``) answers the repeat without acting
  again. A refusal (no email address, an invoice in draft) ends the change dead
  with the provider's message; ``connected-objects changes retry`` sends it under
  a new key once the cause is fixed.
- **Visible.** It is a change: ``status``, ``changes list``, ``explain`` and the
  admin pages show it waiting, in flight or dead; the history records it
  (operation ``action``).

Requesting the same action again while one waits coalesces into it (the last
options win): one email. A request made while one is being sent waits behind it
and is sent after it.

Which actions an entity has is declared by the provider
(:attr:`~connected_objects.plugin.entities.EntitySpec.actions`) and done by its
client (:class:`~connected_objects.plugin.provider.ActionClient`); a request the
provider does not declare is refused at once, and nothing is queued.

Example (with a provider that declares ``send`` on its notes)::

    >>> from sqlalchemy import ForeignKey, Integer, String, create_engine
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker
    >>> from connected_objects import Scope, connections, outbox, request_action
    >>> from connected_objects.declare import connected
    >>> from connected_objects.declare.mapping import FieldMapping
    >>> from connected_objects.plugin.entities import EntityCatalog, EntitySpec
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing import MemoryProvider
    >>> class Notes(MemoryProvider):
    ...     entity_catalog = EntityCatalog([EntitySpec("notes", path="notes", id_field="id", actions=("send",))])
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
    >>> with Session.begin() as s:
    ...     s.add(Org(id=1))
    ...     _ = connections.connect(s, "org", 1, Scope("memory", "test", "acme"), provider=Notes())
    ...     note = Note(id=5, org_id=1, text="hello")
    ...     s.add(note)
    ...     request_action(s, note, "send", provider=Notes(), options={"to": "ap@acme.test"})
    [Scope(provider='memory', marketplace='test', account='acme')]
    >>> with Session() as s:
    ...     [(c.operation, c.local_type, c.local_id) for c in outbox.list_changes(s)]
    [('action', 'note:send', '5')]
    >>> with Session.begin() as s:
    ...     request_action(s, s.get(Note, 5), "fax", provider=Notes())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.ConfigurationError: memory declares no action 'fax' on notes; it has: send ...
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from .. import connections
from ..declare import SyncSpec
from ..declare import specs_of
from ..exceptions import ConfigurationError
from ..plugin import registry
from ..plugin.entities import catalog_of
from ..plugin.provider import Provider
from ..queue import CHANGES
from ..queue import Change
from ..queue import ClaimedChange
from ..queue import actions as queued_actions
from ..queue import journal
from ..scope import Scope
from ..store import identity
from .planning import Plan
from .planning import write_key

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = ["declared_actions", "plan_actions", "request_action"]


def declared_actions(provider: object, entity: str) -> tuple[str, ...]:
    """The actions ``provider`` declares on ``entity`` (``()`` when none, or no catalog)."""
    catalog = catalog_of(provider)
    if catalog is None or entity not in catalog:
        return ()
    return catalog[entity].actions


def request_action(
    session: Session,
    row: object,
    action: str,
    *,
    provider: Provider | str,
    options: Mapping[str, Any] | None = None,
) -> list[Scope]:
    """Queue ``action`` (``"send"``) on ``row``'s record at ``provider``, in ``session``'s transaction.

    It goes to every scope the row's owner is connected to that pushes the row's entity, and is
    performed there by a worker once the row's record exists (see the module docstring). Returns
    those scopes. ``provider`` is the provider object (``hub.provider("quickbooks")``) or its
    registered name; ``options`` are what the provider's action takes (QuickBooks ``send``:
    ``{"sendTo": "…"}``), as JSON values. A new row is flushed first, to know its key. With an
    ``AsyncSession``: ``await session.run_sync(lambda s: request_action(s, row, …))``.

    :raises ConfigurationError: the model is not connected to ``provider``, the provider declares
        no such action on its entity, the options are not JSON, or the row's owner has no
        connection that pushes the entity. Nothing is queued then.
    """
    found = registry.get(provider) if isinstance(provider, str) else provider
    name = found.name
    model = type(row)
    specs = [s for s in specs_of(model) if s.provider == name]
    if not specs:
        raise ConfigurationError(
            f"{model.__name__} is not connected to {name}; declare it with @connected({name!r}, entity=...)"
        )
    spec = specs[0]
    available = declared_actions(found, spec.entity)
    if action not in available:
        has = f"it has: {', '.join(available)}" if available else "it has none"
        raise ConfigurationError(
            f"{name} declares no action {action!r} on {spec.entity}; {has} (EntitySpec.actions in its catalog)"
        )
    given = dict(options or {})
    try:
        json.dumps(given)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the options of {action!r} must be JSON values (text, numbers, …): {exc}") from exc
    local_id = spec.local_id(row)
    if local_id is None:
        session.flush()  # a new row: its key is known once it is inserted (in this transaction)
        local_id = spec.local_id(row)
    owner = spec.owner_key(row)
    if local_id is None or owner is None:
        raise ConfigurationError(f"{model.__name__} {local_id or '(new)'} has no key or no owner yet; set them first")
    infos = connections.for_owners(session, name, spec.owner_type, [owner]).get(owner, [])
    scopes = list(dict.fromkeys(info.scope for info in infos if info.pushes(spec.entity)))
    if not scopes:
        raise ConfigurationError(
            f"{spec.owner_type} {owner} has no {name} connection that pushes {spec.entity}: "
            f"connect it first (connected_objects.connections.connect); nothing was queued"
        )
    object_type = queued_actions.object_type(spec.local_type, action)
    queued_actions.record(
        session.connection(),
        [(Change(scope, spec.entity, object_type, local_id, "action"), given) for scope in scopes],
    )
    return scopes


def plan_actions(
    conn: Connection,
    hub: SyncContext,
    scope: Scope,
    changes: Sequence[ClaimedChange],
    load_rows: Callable[[SyncSpec, Sequence[str]], Mapping[str, Any]],
) -> tuple[list[Plan], list[Change]]:
    """The plans of claimed actions, and the row pushes to queue so that their records come to exist.

    Batched: one query per row type for the links, one for the rows' queued changes, one for
    their dead ones, one for the options, one read of the journal (edits not folded in yet) and,
    for rows with neither a link nor a change, one query per row type for the rows themselves.
    An action on a row deleted since, or whose record was deleted at the provider, is dead: there
    is nothing left to act on. ``load_rows(spec, local_ids)`` reads rows of a model in one query
    (:func:`connected_objects.push.rows.load_rows` on the dispatcher's session).
    """
    plans: list[Plan] = []
    to_enqueue: list[Change] = []
    if not changes:
        return plans, to_enqueue
    provider = hub.provider(scope.provider)
    targets: dict[int, tuple[str, str]] = {}
    by_type: dict[str, set[str]] = {}
    for change in changes:
        target = queued_actions.target_of(change.local_type)
        if target is None:
            plans.append(Plan(change, "dead", reason=f"{change.local_type} is not an action's object"))
            continue
        targets[change.id] = target
        by_type.setdefault(target[0], set()).add(change.local_id)
    links = {
        row_type: identity.resolve_many_local(conn, scope, row_type, sorted(ids), include_deleted=True)
        for row_type, ids in by_type.items()
    }
    rows = {(row_type, lid) for row_type, ids in by_type.items() for lid in ids}
    queued = CHANGES.queued(conn, scope, rows)
    for row_type, ids in by_type.items():  # captured edits the worker has not folded into the outbox yet
        queued.update((row_type, lid) for lid in journal.edited(conn, scope, row_type, ids))
    dead = CHANGES.dead_of(conn, scope, rows - queued)
    unpushed: dict[str, list[ClaimedChange]] = {}
    options = queued_actions.options_of(conn, [c.id for c in changes if c.id in targets and c.in_doubt is None])
    for change in changes:
        if change.id not in targets:
            continue
        row_type, action = targets[change.id]
        spec = hub.spec(row_type, scope.provider)
        if spec is None:
            why = f"{row_type} is not connected to {scope.provider} in this hub; add the model to Hub(models=...)"
            plans.append(Plan(change, "dead", reason=why))
            continue
        if action not in declared_actions(provider, spec.entity):
            why = f"{scope.provider} declares no action {action!r} on {spec.entity} (EntitySpec.actions)"
            plans.append(Plan(change, "dead", spec=spec, reason=why))
            continue
        found = links.get(row_type, {}).get(change.local_id)
        link = found if found is not None and found.linked else None
        call = change.in_doubt
        if call is not None:  # sent before, answer unknown: the very same call again, before anything else
            if link is None or link.foreign_id != call.foreign_id:
                why = f"{spec.entity} {call.foreign_id} is no longer linked: the action in doubt is left as it is"
                plans.append(Plan(change, "skip", spec=spec, call=call, reason=why))
                continue
            payload = dict(call.payload or {})
            plans.append(Plan(change, "perform", spec=spec, payload=payload, link=link, key=call.key, call=call))
            continue
        obj = (row_type, change.local_id)
        if found is not None and link is None and obj not in queued:
            why = f"{spec.entity} {found.foreign_id} was deleted at {scope.provider}: there is nothing to {action}"
            plans.append(Plan(change, "dead", spec=spec, reason=why))
            continue
        if obj in queued:
            state = "pushed and linked" if link is None else "pushed"
            why = f"waiting for {row_type} {change.local_id} to be {state} first"
            plans.append(Plan(change, "defer", spec=spec, reason=why))
            continue
        if link is None:
            if obj in dead:
                why = (
                    f"waiting for {row_type} {change.local_id}, whose push is dead: {dead[obj].last_error or 'refused'}"
                    " (it goes on when that change is retried: connected-objects changes retry)"
                )
                plans.append(Plan(change, "defer", spec=spec, reason=why, blocked=True))
                continue
            unpushed.setdefault(row_type, []).append(change)
            continue
        epoch = change.refusals
        key = write_key(epoch, "perform", scope, spec.entity, link.foreign_id, action, change.id)
        plans.append(
            Plan(change, "perform", spec=spec, payload=options.get(change.id, {}), link=link, key=key, epoch=epoch)
        )
    for row_type, waiting in unpushed.items():  # no link, no change: push the row first, if it still exists
        spec = hub.spec(row_type, scope.provider)
        assert spec is not None
        present = load_rows(spec, sorted({c.local_id for c in waiting}))
        for change in waiting:
            if change.local_id not in present:
                why = f"{row_type} {change.local_id} was deleted before its record was created: nothing to act on"
                plans.append(Plan(change, "dead", spec=spec, reason=why))
                continue
            to_enqueue.append(Change(scope, spec.entity, row_type, change.local_id, "upsert"))
            why = f"waiting for {row_type} {change.local_id} to be pushed and linked first (its push is queued)"
            plans.append(Plan(change, "defer", spec=spec, reason=why))
    return plans, to_enqueue
