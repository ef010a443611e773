"""A provider's own bookkeeping in the application's database: links, locks, first imports.

Some providers keep more than records in the identity map: Maestrano remembers
the groups and users single sign-on created, the SAML assertions already used,
the billing periods already billed. They write through these few named
functions (re-exported by :mod:`connected_objects.plugin`), never through the
core's tables:

- :func:`link`, :func:`resolve`, :func:`resolve_local`, :func:`unlink`,
  :func:`tombstone_scope` and :func:`local_type_name`: the identity map
  (:mod:`connected_objects.store.identity`);
- :func:`request_import`: ask the worker to pull a whole entity for a scope;
- :func:`lock_connection`: hold a scope's connection row until the transaction
  ends, so that two runs of one job for one account wait for each other.

Connecting and disconnecting an account go through the
:class:`~connected_objects.plugin.provider.ProviderContext` a route is given
(``context.connect_scope``, ``context.disconnect_scope``), which knows the
application's providers and vault.

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import Session
    >>> from connected_objects.plugin import Scope, link, lock_connection, resolve
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> scope = Scope("notes", "production", "acme")
    >>> with Session(engine) as session, session.begin():
    ...     lock_connection(session, scope)  # no connection row yet: nothing to hold
    ...     _ = link(session, scope, "groups", "g-1", "organization", 7)
    ...     resolve(session, scope, "groups", "g-1").local_id
    False
    '7'
"""

from __future__ import annotations

from sqlalchemy import update

from ..queue.inbox import request_import
from ..scope import Scope
from ..store.identity import link
from ..store.identity import local_type_name
from ..store.identity import resolve
from ..store.identity import resolve_local
from ..store.identity import tombstone_scope
from ..store.identity import unlink
from ..store.models import connection as _connection
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of

__all__ = [
    "link",
    "local_type_name",
    "lock_connection",
    "request_import",
    "resolve",
    "resolve_local",
    "tombstone_scope",
    "unlink",
]


def lock_connection(db: DB, scope: Scope) -> bool:
    """Hold ``scope``'s connection row until the transaction ends (an UPDATE of its ``updated_at``).

    A second transaction locking the same scope waits for the first to commit or roll back: one
    billing run per group at a time, say. True when the scope has a connection row to hold.
    """
    result = connection_of(db).execute(
        update(_connection)
        .where(
            _connection.c.provider == scope.provider,
            _connection.c.marketplace == scope.marketplace,
            _connection.c.account == scope.account,
        )
        .values(updated_at=utcnow())
    )
    return bool(result.rowcount)
