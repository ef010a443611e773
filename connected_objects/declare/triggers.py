"""Trigger capture: the database records every committed write of a model, whoever makes it.

ORM capture (:mod:`connected_objects.push.capture`) sees what a session flushes. A
nightly ``UPDATE invoice SET status = 'overdue' WHERE …``, a Core
``connection.execute(update(...))``, a fix typed into ``psql`` or another service
writing the same tables are invisible to it. A model declared with
``@connected(..., capture="database")`` has triggers on its table instead, which
append to the same capture journal (``co_journal``) in the writer's own
transaction, so a rolled-back write records nothing:

- **PostgreSQL**: statement-level triggers with transition tables, one journal row
  per statement (a 10,000-row ``UPDATE`` is one row holding 10,000 keys);
- **MariaDB and SQLite**: row triggers, one journal row per row.

Each journal row names the table's local type, the operation (``upsert`` or
``delete``) and, per row, its primary key and its owner columns as they were
written. Inserts and deletes are always recorded; an update only when it changed
one of the columns the model's mappings read (or its owner). Workers fold these
rows in with the ORM's (:func:`connected_objects.queue.journal.absorb`): there the
owners are resolved to their connections
(:mod:`connected_objects.push.captured`), exactly as a flush's are.

**Exactly once.** The ORM hook stands aside for a model under trigger capture, so an
ORM flush is recorded once, by the triggers.

**No echo.** While the applier writes a record that came from a scope
(:func:`~connected_objects.push.capture.applying`), it marks its transaction
(:func:`mark`): a transaction-local setting on PostgreSQL
(``connected_objects.origin``), a session variable on MariaDB
(``@connected_objects_origin``), a row of ``co_capture_origin`` on SQLite (whose
writers take turns, so the row is only ever seen by the transaction that wrote
it). The triggers copy the mark into the journal row and that scope is skipped
when it is folded in; the change still goes everywhere else.

**Installed like the schema.** :class:`CaptureTriggers` is what one table's
triggers record, as plain data: a migration can carry it without importing your
models (``connected-objects schema triggers --app …`` prints the Alembic lines).
Trigger names end in a digest of that data, so :func:`problems` (run by
:meth:`Hub.check() <connected_objects.hub.Hub.check>` and ``health``) finds a table
whose triggers are missing or were made for other columns, and says what to run.

Example::

    >>> from sqlalchemy import Integer, String, create_engine, text
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column
    >>> from connected_objects.declare import connected
    >>> from connected_objects.declare.mapping import FieldMapping
    >>> from connected_objects.declare import triggers
    >>> from connected_objects.store import schema
    >>> class Base(DeclarativeBase): pass
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="org_id",
    ...            capture="database")
    ... class Note(Base):
    ...     __tablename__ = "note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     org_id = mapped_column(Integer)
    ...     text = mapped_column(String(100))
    ...     remark = mapped_column(String(100))  # not mapped: changing it alone records nothing
    >>> engine = create_engine("sqlite://")
    >>> schema.upgrade(engine); Base.metadata.create_all(engine)
    >>> found = triggers.CaptureTriggers.of(Note)
    >>> found.table, found.key, found.owners, found.columns
    ('note', 'id', ('org_id',), ('org_id', 'text'))
    >>> with engine.begin() as db:
    ...     triggers.problems(db, [Note])
    ...     triggers.install(db, [found])
    ...     triggers.problems(db, [Note])
    ['note has no capture triggers: create them with `connected-objects schema triggers --app … --install`, ...']
    []
    >>> with engine.begin() as db:  # raw SQL, no ORM
    ...     _ = db.execute(text("INSERT INTO note (id, org_id, text) VALUES (1, 7, 'hi'), (2, 7, 'yo')"))
    ...     _ = db.execute(text("UPDATE note SET remark = 'unmapped'"))
    ...     _ = db.execute(text("UPDATE note SET text = 'hello' WHERE id = 1"))
    ...     for (changes,) in db.execute(text("SELECT changes FROM co_journal ORDER BY id")):
    ...         print(changes)
    {"t":"note","o":"upsert","f":null,"r":[["1","7"]]}
    {"t":"note","o":"upsert","f":null,"r":[["2","7"]]}
    {"t":"note","o":"upsert","f":null,"r":[["1","7"]]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Dialect
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.orm import Mapper

from ..exceptions import ConfigurationError
from ..exceptions import SchemaOutOfDate
from ..scope import Scope
from ..util.db import DB
from ..util.db import connection_of
from .spec import specs_of

__all__ = [
    "PREFIX",
    "CaptureTriggers",
    "captured_models",
    "check",
    "column_of",
    "drop",
    "install",
    "mark",
    "migration",
    "problems",
    "unmark",
]

#: Every capture trigger (and PostgreSQL function) is named ``co_capture_<table>_<digest>_<event>``.
PREFIX = "co_capture_"
_EVENTS = {"i": "INSERT", "u": "UPDATE", "d": "DELETE"}
#: The PostgreSQL setting and MariaDB variable that carry the origin of an applier's transaction.
_SETTING = "connected_objects.origin"
_VARIABLE = "@connected_objects_origin"
_FIX = (
    "create them with `connected-objects schema triggers --app … --install`, or with the migration it prints "
    "without --install (or triggers.install)"
)


@dataclass(frozen=True)
class CaptureTriggers:
    """What the capture triggers of one table record, as plain data a migration can hold.

    :param table: the table.
    :param local_type: the models' local type (``co_connected_object.local_type``).
    :param key: the primary-key column.
    :param owners: the owner columns of the table's specs (none when every row is its own owner).
    :param columns: an update is recorded when one of these changed (the mappings' and owners' columns).
    """

    table: str
    local_type: str
    key: str
    owners: tuple[str, ...]
    columns: tuple[str, ...]

    @classmethod
    def of(cls, model: type) -> CaptureTriggers:
        """The triggers ``model`` needs, from its ``@connected(..., capture="database")`` declarations."""
        specs = [s for s in specs_of(model) if s.capture == "database"]
        if not specs:
            raise ConfigurationError(f"{model.__name__} is not @connected with capture='database'")
        mapper: Mapper[Any] = inspect(model)
        table: Any = mapper.local_table
        columns: set[str] = set()
        owners: set[str] = set()
        for spec in specs:
            if spec.owner is not None:
                owners.add(column_of(mapper, spec.owner))
            if spec.fields:
                columns.update(column_of(mapper, name) for name in spec.fields if name in mapper.column_attrs)
            else:  # a mapping that reads any attribute: any mapped column
                columns.update(c.name for c in mapper.columns if c.table is table)
        columns |= owners
        return cls(
            table=str(table.name),
            local_type=specs[0].local_type,
            key=str(mapper.primary_key[0].name),
            owners=tuple(sorted(owners)),
            columns=tuple(sorted(columns)),
        )

    @property
    def digest(self) -> str:
        """Eight hex digits of what the triggers record: another digest means other triggers."""
        body = json.dumps([self.table, self.local_type, self.key, self.owners, self.columns, 1])
        return hashlib.sha256(body.encode()).hexdigest()[:8]

    def name(self, event: str) -> str:
        """The trigger's name for ``event`` (``i``, ``u`` or ``d``), within PostgreSQL's and MariaDB's 63."""
        return f"{PREFIX}{self.table[:40]}_{self.digest}_{event}"

    def create(self, dialect: Dialect) -> list[str]:
        """The statements that create the triggers on ``dialect``."""
        if dialect.name == "postgresql":
            return self._postgresql(dialect)
        if dialect.name in ("mysql", "mariadb"):
            return self._mariadb(dialect)
        if dialect.name == "sqlite":
            return self._sqlite(dialect)
        raise ConfigurationError(f"capture='database' supports PostgreSQL, MariaDB and SQLite, not {dialect.name}")

    # -- the three dialects ---------------------------------------------------------------

    def _literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def _postgresql(self, dialect: Dialect) -> list[str]:
        q = dialect.identifier_preparer.quote
        function, table = q(self.name("f")), q(self.table)

        def row(alias: str) -> str:
            cells = ", ".join(f"{alias}.{q(c)}::text" for c in (self.key, *self.owners))
            return f"json_agg(json_build_array({cells}))"

        def insert(op: str, alias: str, source: str) -> str:
            return (
                "INSERT INTO co_journal (origin, changes, created_at) "
                f"SELECT NULL, json_build_object('t', {self._literal(self.local_type)}, 'o', '{op}', "
                f"'f', NULLIF(current_setting('{_SETTING}', true), ''), 'r', {row(alias)})::text, "
                f"clock_timestamp() AT TIME ZONE 'UTC' FROM {source} HAVING count(*) > 0;"
            )

        changed = " OR ".join(f"n.{q(c)} IS DISTINCT FROM o.{q(c)}" for c in self.columns) or "false"
        body = (
            "BEGIN\n"
            f"  IF TG_OP = 'INSERT' THEN {insert('upsert', 'n', 'co_new n')}\n"
            f"  ELSIF TG_OP = 'UPDATE' THEN {insert('upsert', 'n', f'co_new n JOIN co_old o ON o.{q(self.key)} = n.{q(self.key)} WHERE {changed}')}\n"  # noqa: E501
            f"  ELSE {insert('delete', 'o', 'co_old o')}\n"
            "  END IF;\n  RETURN NULL;\nEND"
        )
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $co$\n{body}\n$co$",
            f"CREATE TRIGGER {q(self.name('i'))} AFTER INSERT ON {table} REFERENCING NEW TABLE AS co_new "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {q(self.name('u'))} AFTER UPDATE ON {table} REFERENCING OLD TABLE AS co_old "
            f"NEW TABLE AS co_new FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {q(self.name('d'))} AFTER DELETE ON {table} REFERENCING OLD TABLE AS co_old "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]

    def _mariadb(self, dialect: Dialect) -> list[str]:
        q = dialect.identifier_preparer.quote

        def insert(op: str, alias: str) -> str:
            cells = ", ".join(f"CAST({alias}.{q(c)} AS CHAR)" for c in (self.key, *self.owners))
            return (
                "INSERT INTO co_journal (origin, changes, created_at) VALUES (NULL, "
                f"JSON_OBJECT('t', {self._literal(self.local_type)}, 'o', '{op}', 'f', {_VARIABLE}, "
                f"'r', JSON_ARRAY(JSON_ARRAY({cells}))), UTC_TIMESTAMP(6))"
            )

        same = " AND ".join(f"NEW.{q(c)} <=> OLD.{q(c)}" for c in self.columns) or "TRUE"
        table = q(self.table)
        return [
            f"CREATE TRIGGER {q(self.name('i'))} AFTER INSERT ON {table} FOR EACH ROW {insert('upsert', 'NEW')}",
            f"CREATE TRIGGER {q(self.name('u'))} AFTER UPDATE ON {table} FOR EACH ROW "
            f"BEGIN IF NOT ({same}) THEN {insert('upsert', 'NEW')}; END IF; END",
            f"CREATE TRIGGER {q(self.name('d'))} AFTER DELETE ON {table} FOR EACH ROW {insert('delete', 'OLD')}",
        ]

    def _sqlite(self, dialect: Dialect) -> list[str]:
        q = dialect.identifier_preparer.quote

        def insert(op: str, alias: str) -> str:
            cells = ", ".join(f"CAST({alias}.{q(c)} AS TEXT)" for c in (self.key, *self.owners))
            return (
                "INSERT INTO co_journal (origin, changes, created_at) VALUES (NULL, "
                f"json_object('t', {self._literal(self.local_type)}, 'o', '{op}', "
                "'f', (SELECT origin FROM co_capture_origin WHERE id = 1), "
                f"'r', json_array(json_array({cells}))), strftime('%Y-%m-%d %H:%M:%f000', 'now'));"
            )

        same = " AND ".join(f"NEW.{q(c)} IS OLD.{q(c)}" for c in self.columns) or "1"
        table = q(self.table)
        return [
            f"CREATE TRIGGER {q(self.name('i'))} AFTER INSERT ON {table} FOR EACH ROW "
            f"BEGIN {insert('upsert', 'NEW')} END",
            f"CREATE TRIGGER {q(self.name('u'))} AFTER UPDATE ON {table} FOR EACH ROW WHEN NOT ({same}) "
            f"BEGIN {insert('upsert', 'NEW')} END",
            f"CREATE TRIGGER {q(self.name('d'))} AFTER DELETE ON {table} FOR EACH ROW "
            f"BEGIN {insert('delete', 'OLD')} END",
        ]


def column_of(mapper: Mapper[Any], attribute: str) -> str:
    """The column name of a mapped ``attribute``."""
    prop = mapper.column_attrs[attribute]
    return str(prop.columns[0].name)


def migration(tables: Sequence[CaptureTriggers]) -> str:
    """The lines of an Alembic migration that creates (and drops) the capture triggers of ``tables``."""
    create = "\n".join(
        f"    op.create_capture_triggers(\n        {t.table!r},\n        local_type={t.local_type!r},\n"
        f"        key={t.key!r},\n        owners={list(t.owners)!r},\n        columns={list(t.columns)!r},\n    )"
        for t in tables
    )
    dropped = "\n".join(f"    op.drop_capture_triggers({t.table!r})" for t in tables)
    return (
        "# a migration of yours: alembic revision -m 'capture triggers', then these lines\n"
        "import connected_objects.declare.trigger_ops  # noqa: F401  (registers the operations)\n\n\n"
        f"def upgrade() -> None:\n{create}\n\n\ndef downgrade() -> None:\n{dropped}\n"
    )


def captured_models(models: Iterable[type]) -> list[type]:
    """The models among ``models`` declared with ``capture="database"``."""
    return [m for m in models if any(s.capture == "database" for s in specs_of(m))]


def install(db: DB, tables: Iterable[CaptureTriggers | type]) -> None:
    """Create (or re-create) the capture triggers of each table; drops older ones of the same table first."""
    conn = connection_of(db)
    for item in tables:
        wanted = item if isinstance(item, CaptureTriggers) else CaptureTriggers.of(item)
        _drop_named(conn, wanted.table, _found(conn, wanted.table))
        for statement in wanted.create(conn.dialect):
            conn.exec_driver_sql(statement)


def drop(db: DB, tables: Iterable[CaptureTriggers | type]) -> None:
    """Drop every capture trigger of each table (whatever columns they were made for)."""
    conn = connection_of(db)
    for item in tables:
        table = item.table if isinstance(item, CaptureTriggers) else CaptureTriggers.of(item).table
        _drop_named(conn, table, _found(conn, table))


def problems(db: DB, models: Iterable[type]) -> list[str]:
    """What is wrong with the capture triggers of ``models`` under ``capture="database"``: [] when nothing."""
    conn = connection_of(db)
    found: list[str] = []
    for model in captured_models(models):
        wanted = CaptureTriggers.of(model)
        names = set(_found(conn, wanted.table))
        expected = {wanted.name(e) for e in _EVENTS}
        if not names:
            found.append(f"{wanted.table} has no capture triggers: {_FIX}")
        elif names != expected:
            found.append(f"{wanted.table}'s capture triggers are out of date (its mapped columns changed): {_FIX}")
    return found


def check(db: DB, models: Iterable[type]) -> None:
    """Raise :class:`~connected_objects.exceptions.SchemaOutOfDate` naming what :func:`problems` found."""
    found = problems(db, models)
    if found:
        raise SchemaOutOfDate("; ".join(found))


def _found(conn: Connection, table: str) -> list[str]:
    """The names of the capture triggers on ``table`` (PostgreSQL's functions are named after them)."""
    name = conn.dialect.name
    if name == "postgresql":
        query = (
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = :table AND pg_table_is_visible(c.oid) AND NOT t.tgisinternal"
        )
    elif name in ("mysql", "mariadb"):
        query = (
            "SELECT trigger_name FROM information_schema.triggers "
            "WHERE event_object_schema = DATABASE() AND event_object_table = :table"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"
    return sorted(str(n) for (n,) in conn.execute(text(query), {"table": table}) if str(n).startswith(PREFIX))


def _drop_named(conn: Connection, table: str, names: Sequence[str]) -> None:
    """Drop the triggers ``names`` of ``table``, then (PostgreSQL) the functions they ran."""
    q = conn.dialect.identifier_preparer.quote
    postgresql = conn.dialect.name == "postgresql"
    for name in names:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {q(name)}" + (f" ON {q(table)}" if postgresql else ""))
    if postgresql:
        for function in sorted({name[:-1] + "f" for name in names}):
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {q(function)}()")


# -- the applier's mark ------------------------------------------------------------------


def mark(db: DB, origin: Scope | str) -> None:
    """Mark the transaction as applying ``origin``'s data: the triggers record it, and it is not sent back."""
    conn = connection_of(db)
    value = str(origin)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": _SETTING, "value": value})
    elif conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text(f"SET {_VARIABLE} = :value"), {"value": value})
    else:
        conn.execute(text("DELETE FROM co_capture_origin"))
        conn.execute(text("INSERT INTO co_capture_origin (id, origin) VALUES (1, :value)"), {"value": value})


def unmark(db: DB) -> None:
    """Undo :func:`mark`: what the transaction writes from now on is the application's own."""
    conn = connection_of(db)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config(:name, '', true)"), {"name": _SETTING})
    elif conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text(f"SET {_VARIABLE} = NULL"))
    else:
        conn.execute(text("DELETE FROM co_capture_origin"))
