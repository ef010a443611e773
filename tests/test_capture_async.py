"""Capture on AsyncSession: listeners go on the sync session class, changes land in the same transaction."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from connected_objects import ConfigurationError
from connected_objects import capture
from connected_objects import connections
from connected_objects.queue import journal
from connected_objects.store.models import metadata
from connected_objects.store.models import outbox
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Organization
from connected_objects.testing.sandbox import SandboxProvider

from .conftest import ACME


class AppSession(Session):
    """The application's own sync session class behind its AsyncSession."""


def test_async_session_changes_are_captured(tmp_path):
    async def main():
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.sqlite'}")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(metadata.create_all)
        maker = async_sessionmaker(engine, sync_session_class=AppSession, expire_on_commit=False)
        capture.install(AppSession)
        try:
            async with maker() as s:
                s.add(Organization(id=1, name="o"))
                await s.flush()
                sandbox = SandboxProvider("http://sandbox")  # no Hub here: name the provider to connect()
                await s.run_sync(lambda sync: connections.connect(sync, "organization", 1, ACME, provider=sandbox))
                s.add(Customer(id=1, organization_id=1, name="async"))
                await s.commit()
            async with maker() as s:
                s.add(Customer(id=2, organization_id=1, name="rolled back"))
                await s.flush()
                await s.rollback()
            async with maker() as s:
                await s.run_sync(journal.absorb)
                return (await s.execute(select(outbox.c.local_id, outbox.c.operation))).all()
        finally:
            capture.uninstall(AppSession)
            await engine.dispose()

    assert [tuple(r) for r in asyncio.run(main())] == [("1", "upsert")]


def test_install_on_an_async_session_instance_and_class():
    class AppAsyncSession(AsyncSession):
        sync_session_class = AppSession

    capture.install(AppAsyncSession)
    try:
        assert capture.installed(AppSession)
    finally:
        capture.uninstall(AppAsyncSession)
    assert not capture.installed(AppSession)
    with pytest.raises(ConfigurationError, match="async_sessionmaker"):
        capture.install(async_sessionmaker())


def test_installing_on_plain_async_session_is_refused():
    with pytest.raises(ConfigurationError, match="sync_session_class"):
        capture.install(AsyncSession)
