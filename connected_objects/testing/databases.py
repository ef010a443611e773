"""Clean SQLite, PostgreSQL and MariaDB databases for pytest.

Load it as a plugin from your ``conftest.py``::

    pytest_plugins = ["connected_objects.testing.databases"]

and ask for a fixture:

``engine``
    parametrised over ``sqlite``, ``postgresql`` and ``mariadb``: an engine on a
    scratch database holding the ``co_*`` tables, emptied after each test
    (tables a test creates itself are dropped).
``sqlite_engine`` / ``postgresql_engine`` / ``server_engine``
    the same, on SQLite only / PostgreSQL only / PostgreSQL and MariaDB.
``empty_database_url``
    parametrised like ``engine``: the URL of a brand-new, empty database
    (for migration tests), dropped afterwards.
``redis_url``
    the URL of a Redis that answers (``CO_TEST_REDIS_URL``, by default
    ``redis://127.0.0.1:6379/0``), for the Redis limits store; tests give
    their keys a unique prefix.

Where the servers come from, per backend:

1. ``CO_TEST_POSTGRES_URL`` / ``CO_TEST_MARIADB_URL``, e.g.
   ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` and
   ``mariadb+pymysql://root@127.0.0.1:3306/test``. The suite creates its own
   scratch databases next to the one named, so the user needs CREATE DATABASE.
   A URL that is set but unreachable fails the tests: it never skips.
2. Otherwise, if a Docker engine answers, testcontainers starts a server.
3. Otherwise those tests skip, with a reason saying how to enable them, unless
   ``CO_TEST_REQUIRE`` names the backend (``CO_TEST_REQUIRE=postgresql,mariadb,redis,chromium``
   in CI): then they fail. Redis is the same: a Redis that does not answer
   skips its tests, or fails them when ``CO_TEST_REQUIRE`` names ``redis``; and
   so is Chromium for the browser tests (:mod:`connected_objects.testing.browser`).

Example (a test module)::

    from connected_objects import Scope

    from connected_objects.store import identity

    def test_link(engine):
        with engine.begin() as conn:
            identity.link(conn, Scope("memory", "t", "a"), "notes", "1", "note", 1)
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ..store.models import lock
from ..store.models import metadata as co_metadata

__all__ = [
    "BACKENDS",
    "REDIS_URL",
    "StatementCounter",
    "count_statements",
    "create_database",
    "drop_database",
    "server_url",
]

BACKENDS = ("sqlite", "postgresql", "mariadb")
SERVER_BACKENDS = ("postgresql", "mariadb")
_ENV = {"postgresql": "CO_TEST_POSTGRES_URL", "mariadb": "CO_TEST_MARIADB_URL"}
_EXAMPLE = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mariadb+pymysql://root@127.0.0.1:3306/test",
}


#: The Redis the tests use unless ``CO_TEST_REDIS_URL`` names another.
REDIS_URL = "redis://127.0.0.1:6379/0"


def _required(backend: str) -> bool:
    wanted = {b.strip() for b in os.environ.get("CO_TEST_REQUIRE", "").split(",")}
    return backend in wanted


_containers: dict[str, Any] = {}


_docker: list[bool] = []  # the answer, once asked: a Docker engine does not come and go during a run


def _docker_available() -> bool:
    if not _docker:
        _docker.append(_ask_docker())
    return _docker[0]


def _ask_docker() -> bool:
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=5)
            client.ping()
            client.close()
            return True
        except Exception:
            return False
        finally:
            gc.collect()


def _container_url(backend: str) -> str | None:
    if backend in _containers:
        return str(_containers[backend][1])
    if not _docker_available():
        return None
    if backend == "postgresql":
        from testcontainers.community.postgres import PostgresContainer

        pg = PostgresContainer("postgres:16", driver="psycopg").start()
        url = pg.get_connection_url()
        _containers[backend] = (pg, url)
    else:
        from testcontainers.community.mysql import MySqlContainer

        maria = MySqlContainer("mariadb:10.11", dialect="pymysql").start()
        url = maria.get_connection_url().replace("mysql+pymysql", "mariadb+pymysql")
        _containers[backend] = (maria, url)
    return url


def server_url(backend: str) -> str:
    """The configured server URL for ``postgresql`` or ``mariadb``; skips or fails if there is none."""
    url = os.environ.get(_ENV[backend]) or _container_url(backend)
    if url:
        return url
    reason = f"{backend} tests need a server: set {_ENV[backend]} (e.g. {_EXAMPLE[backend]}) or run a Docker engine"
    if _required(backend):
        pytest.fail(f"CO_TEST_REQUIRE names {backend} but {reason}", pytrace=False)
    pytest.skip(reason)


def create_database(server: str, name: str) -> str:
    """Create database ``name`` on the server of URL ``server``; return its URL."""
    url = make_url(server)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    except Exception as exc:
        hidden = url.render_as_string(hide_password=True)
        pytest.fail(f"cannot create a scratch database on {hidden}: {exc}", pytrace=False)
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    """Drop database ``name`` on the server of URL ``server`` (if it exists)."""
    url = make_url(server)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


def _scratch_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@dataclass
class _Server:
    url: str
    engine: Engine


@pytest.fixture(scope="session")
def _server_databases() -> Iterator[dict[str, _Server]]:
    created: dict[str, _Server] = {}
    yield created
    for backend, server in created.items():
        server.engine.dispose()
        drop_database(server_url(backend), make_url(server.url).database or "")
    for container, _url in _containers.values():
        container.stop()
    _containers.clear()


def _server_engine(backend: str, cache: dict[str, _Server]) -> Engine:
    if backend not in cache:
        url = create_database(server_url(backend), _scratch_name("co_test"))
        engine = create_engine(url, pool_size=10, max_overflow=20)
        co_metadata.create_all(engine)
        cache[backend] = _Server(url, engine)
    return cache[backend].engine


def _empty(engine: Engine) -> None:
    """Drop the tables a test made and empty the co_* tables, in a few statements.

    One query lists the tables (no reflection of their columns), one finds the co_* tables that have
    rows, and only those get a ``DELETE`` (cheaper than ``TRUNCATE`` for the few rows a test leaves).
    """
    engine.dispose()  # nothing of the test's may hold locks past here
    ours = [t for t in reversed(co_metadata.sorted_tables) if t is not lock]  # co_lock's rows are fixed
    postgresql = engine.dialect.name == "postgresql"
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        if postgresql:
            names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
        else:
            names = conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
            )
        extra = sorted(set(names.scalars()) - set(co_metadata.tables))
        if extra and postgresql:
            conn.execute(text(f"DROP TABLE {', '.join(quote(t) for t in extra)} CASCADE"))
            types = conn.execute(  # the enum types those tables made (the co_* tables have none)
                text(
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                    " WHERE t.typtype = 'e' AND n.nspname = current_schema()"
                )
            ).scalars()
            dropped = ", ".join(quote(t) for t in types)
            if dropped:
                conn.execute(text(f"DROP TYPE {dropped} CASCADE"))
        elif extra:
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            conn.execute(text(f"DROP TABLE {', '.join(quote(t) for t in extra)}"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
        probe = " UNION ALL ".join(f"(SELECT '{t.name}' FROM {quote(t.name)} LIMIT 1)" for t in ours)
        filled = set(conn.execute(text(probe)).scalars())
        for table in ours:  # children before parents
            if table.name in filled:
                conn.execute(table.delete())


_template: list[Path] = []


def _sqlite_template() -> Path:
    """A SQLite file holding the co_* tables, made once per run; each test gets a copy."""
    if not _template:
        where = Path(tempfile.mkdtemp(prefix="co-template-"))
        atexit.register(shutil.rmtree, where, ignore_errors=True)
        engine = create_engine(f"sqlite:///{where / 'template.sqlite'}")
        co_metadata.create_all(engine)
        engine.dispose()
        _template.append(where / "template.sqlite")
    return _template[0]


def _no_fsync(dbapi_connection: Any, connection_record: Any) -> None:
    """A test's SQLite file lives as long as the test: commits need not wait for the disk."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


@contextlib.contextmanager
def _engine_for(backend: str, tmp_path: Path, cache: dict[str, _Server]) -> Iterator[Engine]:
    if backend == "sqlite":
        path = tmp_path / "test.sqlite"
        shutil.copyfile(_sqlite_template(), path)
        engine = create_engine(f"sqlite:///{path}")
        event.listen(engine, "connect", _no_fsync)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    engine = _server_engine(backend, cache)
    try:
        yield engine
    finally:
        _empty(engine)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path, _server_databases: dict[str, _Server]) -> Iterator[Engine]:
    """An engine with the co_* tables, on each backend in turn, clean for every test."""
    with _engine_for(request.param, tmp_path, _server_databases) as e:
        yield e


@pytest.fixture
def sqlite_engine(tmp_path: Path, _server_databases: dict[str, _Server]) -> Iterator[Engine]:
    """An engine with the co_* tables on a fresh SQLite file."""
    with _engine_for("sqlite", tmp_path, _server_databases) as e:
        yield e


@pytest.fixture(params=SERVER_BACKENDS)
def server_engine(
    request: pytest.FixtureRequest, tmp_path: Path, _server_databases: dict[str, _Server]
) -> Iterator[Engine]:
    """An engine with the co_* tables on PostgreSQL, then MariaDB."""
    with _engine_for(request.param, tmp_path, _server_databases) as e:
        yield e


@pytest.fixture
def postgresql_engine(tmp_path: Path, _server_databases: dict[str, _Server]) -> Iterator[Engine]:
    """An engine with the co_* tables on PostgreSQL only."""
    with _engine_for("postgresql", tmp_path, _server_databases) as e:
        yield e


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new empty database on each backend in turn."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    server = server_url(backend)
    name = _scratch_name("co_empty")
    url = create_database(server, name)
    try:
        yield url
    finally:
        drop_database(server, name)


@pytest.fixture
def redis_url() -> str:
    """A Redis URL that answers; skips (or fails, when ``CO_TEST_REQUIRE`` names ``redis``) otherwise."""
    url = os.environ.get("CO_TEST_REDIS_URL") or REDIS_URL
    shown = make_url(url.replace("redis://", "redis+x://", 1)).render_as_string(hide_password=True)
    shown = shown.replace("redis+x://", "redis://", 1)
    reason = (
        f"Redis tests need a Redis at {shown}: start one (redis-server --port 6379 --save '' --appendonly no) "
        "or set CO_TEST_REDIS_URL, with redis-py installed (pip install 'connected-objects[redis]')"
    )
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        if _required("redis"):
            pytest.fail(f"CO_TEST_REQUIRE names redis but {reason} ({type(exc).__name__})", pytrace=False)
        pytest.skip(reason)
    return url


class StatementCounter:
    """Counts the SQL statements an engine executes while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@contextlib.contextmanager
def count_statements(engine: Engine) -> Iterator[StatementCounter]:
    """Record every statement sent by ``engine`` inside the ``with`` block."""
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter._on_execute)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter._on_execute)
