"""Authorizations under way, in ``co_authorization``: started, waiting for a pick, done.

A row is written when a browser starts connecting an account and moved on by
one conditional ``UPDATE`` per step (:func:`advance`), so two requests with
the same ``state`` cannot both succeed: the second finds the row at another
stage and is refused. Rows are looked up by the SHA-256 of the state's nonce;
the PKCE verifier and the tokens waiting for a pick are sealed by the vault.
Expired rows are removed when new authorizations start.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects.store.models import metadata, utcnow
    >>> from connected_objects.oauth import pending
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as db:
    ...     pending.begin(db, nonce="n1", binding="b1", provider="quickbooks", owner=("organization", "7"),
    ...                   verifier=None, expires_at=utcnow() + dt.timedelta(minutes=10))
    ...     found = pending.find(db, "n1")
    ...     first = pending.advance(db, found.id, "started", "done")
    ...     again = pending.advance(db, found.id, "started", "done")
    >>> found.provider, found.owner, first, again
    ('quickbooks', ('organization', '7'), True, False)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from ..store.models import authorization as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .state import digest

__all__ = ["Pending", "advance", "begin", "find"]

#: How long an expired row is kept (for looking into a failed attempt) before a new start removes it.
KEEP = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Pending:
    """One authorization under way."""

    id: int
    binding_hash: str
    provider: str
    owner: tuple[str, str]
    stage: str
    verifier: bytes | None
    tokens: bytes | None
    token_expires_at: dt.datetime | None
    accounts: Sequence[dict[str, Any]]
    expires_at: dt.datetime

    def bound_to(self, binding: str | None) -> bool:
        """Whether the browser's binding cookie is this authorization's."""
        import hmac

        return binding is not None and hmac.compare_digest(digest(binding), self.binding_hash)


def begin(
    db: DB,
    *,
    nonce: str,
    binding: str,
    provider: str,
    owner: tuple[str, str],
    verifier: bytes | None,
    expires_at: dt.datetime,
) -> None:
    """Record a started authorization (and forget ones expired for more than a day)."""
    conn = connection_of(db)
    now = utcnow()
    conn.execute(delete(t).where(t.c.expires_at < now - KEEP))
    conn.execute(
        t.insert().values(
            state_hash=digest(nonce),
            binding_hash=digest(binding),
            provider=provider,
            owner_type=owner[0],
            owner_id=owner[1],
            stage="started",
            verifier=verifier,
            expires_at=expires_at,
            created_at=now,
        )
    )


def find(db: DB, nonce: str) -> Pending | None:
    """The authorization a state's nonce names, or None."""
    row = connection_of(db).execute(select(t).where(t.c.state_hash == digest(nonce))).first()
    if row is None:
        return None
    m = row._mapping
    return Pending(
        id=m["id"],
        binding_hash=m["binding_hash"],
        provider=m["provider"],
        owner=(m["owner_type"], m["owner_id"]),
        stage=m["stage"],
        verifier=m["verifier"],
        tokens=m["tokens"],
        token_expires_at=m["token_expires_at"],
        accounts=list(m["accounts"] or []),
        expires_at=m["expires_at"],
    )


def advance(db: DB, id: int, from_stage: str, to_stage: str, **values: Any) -> bool:
    """Move an authorization from one stage to the next; False when it was no longer at ``from_stage``
    (another request took this step first) or it expired."""
    result = connection_of(db).execute(
        update(t)
        .where(t.c.id == id, t.c.stage == from_stage, t.c.expires_at > utcnow())
        .values(stage=to_stage, **values)
    )
    return bool(result.rowcount)
