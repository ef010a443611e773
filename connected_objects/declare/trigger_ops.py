"""Alembic operations for capture triggers: ``op.create_capture_triggers`` and ``op.drop_capture_triggers``.

The triggers of a model under ``@connected(..., capture="database")``
(:mod:`connected_objects.declare.triggers`) live on *your* table, so they are created
in *your* migrations, next to the table they watch. Importing this module registers
the two operations on Alembic's ``op``; ``connected-objects schema triggers --app …``
prints the lines for each such model, with the columns as they are declared today
(a migration must not import your models: they change, it must not)::

    import connected_objects.declare.trigger_ops  # noqa: F401  (registers the operations)

    def upgrade() -> None:
        op.create_capture_triggers(
            "invoice", local_type="invoice", key="id", owners=["organization_id"],
            columns=["number", "organization_id", "total"],
        )

    def downgrade() -> None:
        op.drop_capture_triggers("invoice")

When a mapping starts reading another column, add a migration that creates them
again with the new ``columns`` (the old ones are replaced): until then
:meth:`Hub.check() <connected_objects.hub.Hub.check>` and ``health`` say they are out of date.

Example (what a migration runs, on a bare connection)::

    >>> from alembic.migration import MigrationContext
    >>> from alembic.operations import Operations
    >>> from sqlalchemy import create_engine, text
    >>> import connected_objects.declare.trigger_ops
    >>> from connected_objects.store import schema
    >>> engine = create_engine("sqlite://")
    >>> schema.upgrade(engine)
    >>> with engine.begin() as conn:
    ...     _ = conn.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, org_id INTEGER, body TEXT)"))
    ...     op = Operations(MigrationContext.configure(conn))
    ...     op.create_capture_triggers("note", local_type="note", key="id", owners=["org_id"], columns=["body"])
    ...     _ = conn.execute(text("INSERT INTO note VALUES (1, 7, 'hi')"))
    ...     conn.scalar(text("SELECT changes FROM co_journal"))
    '{"t":"note","o":"upsert","f":null,"r":[["1","7"]]}'
    >>> with engine.begin() as conn:
    ...     Operations(MigrationContext.configure(conn)).drop_capture_triggers("note")
    ...     conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"))
    0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic.operations import MigrateOperation
from alembic.operations import Operations

from .triggers import CaptureTriggers
from .triggers import drop
from .triggers import install

__all__ = ["CreateCaptureTriggersOp", "DropCaptureTriggersOp"]


@Operations.register_operation("create_capture_triggers")
class CreateCaptureTriggersOp(MigrateOperation):
    """``op.create_capture_triggers(table, local_type=, key=, owners=, columns=)``: (re)create a table's triggers."""

    def __init__(self, triggers: CaptureTriggers) -> None:
        self.triggers = triggers

    @classmethod
    def create_capture_triggers(
        cls,
        operations: Operations,
        table: str,
        *,
        local_type: str,
        key: str,
        owners: Sequence[str] = (),
        columns: Sequence[str] = (),
    ) -> Any:
        """Create the capture triggers of ``table`` (replacing any it has), as :class:`CaptureTriggers` says."""
        found = CaptureTriggers(table, local_type, key, tuple(sorted(owners)), tuple(sorted({*columns, *owners})))
        return operations.invoke(cls(found))

    def reverse(self) -> DropCaptureTriggersOp:
        return DropCaptureTriggersOp(self.triggers.table)


@Operations.register_operation("drop_capture_triggers")
class DropCaptureTriggersOp(MigrateOperation):
    """``op.drop_capture_triggers(table)``: drop every capture trigger of ``table``."""

    def __init__(self, table: str) -> None:
        self.table = table

    @classmethod
    def drop_capture_triggers(cls, operations: Operations, table: str) -> Any:
        """Drop the capture triggers of ``table``, whatever columns they were made for."""
        return operations.invoke(cls(table))


@Operations.implementation_for(CreateCaptureTriggersOp)
def _create(operations: Operations, operation: CreateCaptureTriggersOp) -> None:
    install(operations.get_bind(), [operation.triggers])


@Operations.implementation_for(DropCaptureTriggersOp)
def _drop(operations: Operations, operation: DropCaptureTriggersOp) -> None:
    drop(operations.get_bind(), [CaptureTriggers(operation.table, "", "", (), ())])
