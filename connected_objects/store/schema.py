"""How applications get, check and apply connected-objects' own migrations.

The ``co_*`` tables are created and changed only by Alembic revisions that ship
inside the package as ``connected_objects.migrations``, on a branch labelled
``connected_objects``. There are two ways to run them; pick one per database.

**With your own Alembic** (recommended): add our versions to your
``version_locations`` and upgrade all heads. :func:`snippet` prints this, for
a project made with ``alembic init alembic``::

    # alembic.ini, [alembic] section: set these two (alembic init wrote path_separator = os;
    # replace that line, our location has a colon)
    path_separator = space
    version_locations = %(here)s/alembic/versions connected_objects.migrations:versions

    # alembic/env.py: replace target_metadata = None with
    import connected_objects.store.models
    target_metadata = [Base.metadata, connected_objects.store.models.metadata]

    # then, in the shell: our tables, then your first revision (a branch of its own)
    alembic upgrade heads
    alembic revision --autogenerate --head base --branch-label app --version-path alembic/versions -m "app tables"
    alembic upgrade heads

Your own revisions live on their own branch (label ``app`` above): the first
starts at ``base``; later ones continue it with ``alembic revision
--autogenerate --head app@head -m ...``. ``alembic upgrade heads`` applies both
branches; ``alembic check`` is clean afterwards.

**Without Alembic**: call :func:`upgrade` at start-up. It runs our revisions
alone, recording them in their own table ``co_alembic_version`` so they never
mix with an application's ``alembic_version``. Don't combine the two modes on
one database.

Either way, :func:`check` at start-up refuses to run against an out-of-date
schema and names the command that fixes it; :meth:`Hub.install()
<connected_objects.hub.Hub.install>` calls it. A database whose ``co_*``
tables were made with ``connected_objects.store.models.metadata.create_all`` (as test
fixtures do) records no revision; :func:`check` accepts it when every table and
column is there.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.store import schema
    >>> engine = create_engine("sqlite://")
    >>> schema.upgrade(engine)
    >>> with engine.connect() as conn:
    ...     schema.check(conn)
    ...     schema.current(conn)
    'co_0016'
"""

from __future__ import annotations

import functools
from importlib.resources import as_file
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text

from ..exceptions import SchemaOutOfDate
from .models import metadata

__all__ = [
    "BRANCH_LABEL",
    "FIRST_REVISION",
    "VERSION_LOCATION",
    "VERSION_TABLE",
    "check",
    "current",
    "downgrade",
    "head",
    "location",
    "snippet",
    "upgrade",
]

#: The Alembic branch label of our revisions.
BRANCH_LABEL = "connected_objects"
#: What to add to ``version_locations`` in an application's Alembic configuration.
VERSION_LOCATION = "connected_objects.migrations:versions"
#: The version table :func:`upgrade` uses when the application has no Alembic of its own.
VERSION_TABLE = "co_alembic_version"
#: The command that makes an application's first own revision, a branch next to ours.
FIRST_REVISION = (
    'alembic revision --autogenerate --head base --branch-label app --version-path alembic/versions -m "app tables"'
)


def location() -> Path:
    """The directory holding our Alembic environment (``env.py``, ``versions/``)."""
    with as_file(files("connected_objects.migrations")) as path:
        return Path(path)


def snippet() -> str:
    """The configuration to paste into an Alembic project made with ``alembic init alembic``.

    Each ``key = value`` line of the ``alembic.ini`` part *sets* that key: ``alembic init``
    already writes ``path_separator = os``, which must become ``space`` (a second
    ``path_separator`` line would make the file unreadable).
    """
    return (
        "# alembic.ini, [alembic] section: set these two (alembic init wrote path_separator = os;\n"
        "# replace that line, our location has a colon)\n"
        "path_separator = space\n"
        f"version_locations = %(here)s/alembic/versions {VERSION_LOCATION}\n"
        "\n"
        "# alembic/env.py: replace target_metadata = None with\n"
        "import connected_objects.store.models\n"
        "target_metadata = [Base.metadata, connected_objects.store.models.metadata]\n"
        "\n"
        "# then, in the shell: our tables, then your first revision (a branch of its own)\n"
        "alembic upgrade heads\n"
        f"{FIRST_REVISION}\n"
        "alembic upgrade heads\n"
    )


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location()))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this version of connected-objects ships."""
    return _revisions()[0]


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head and every revision we ship (read once: the files do not change under a running process)."""
    script = ScriptDirectory.from_config(_config())
    heads = script.get_heads()
    if len(heads) != 1:  # pragma: no cover - a packaging bug
        raise SchemaOutOfDate(f"connected-objects ships {len(heads)} migration heads; reinstall the package")
    return heads[0], frozenset(rev.revision for rev in script.walk_revisions())


def current(connection: Connection) -> str | None:
    """The revision of our branch applied to this database, or None.

    Looks in ``co_alembic_version`` (standalone mode) and in the application's
    ``alembic_version`` (branch mode).
    """
    ours = _revisions()[1]
    tables = set(inspect(connection).get_table_names())
    for table in (VERSION_TABLE, "alembic_version"):
        if table in tables:
            for (rev,) in connection.execute(text(f"SELECT version_num FROM {table}")):
                if rev in ours:
                    return str(rev)
    return None


def check(connection: Connection) -> None:
    """Raise :class:`SchemaOutOfDate` unless our tables are at :func:`head`.

    The message names the command to run.
    """
    found = current(connection)
    wanted = head()
    if found == wanted:
        return
    if found is None and _made_from_metadata(connection):
        return
    state = "are missing" if found is None else f"are at revision {found}"
    raise SchemaOutOfDate(
        f"the connected-objects tables {state}; this version needs {wanted}. Run 'alembic upgrade heads' "
        "if your Alembic version_locations include connected_objects.migrations:versions, otherwise call "
        "connected_objects.store.schema.upgrade(engine) or run 'connected-objects schema upgrade --database URL'."
    )


def _made_from_metadata(connection: Connection) -> bool:
    """Whether every co_* table and column exists although no revision is recorded.

    That is a database made with ``connected_objects.store.models.metadata.create_all``
    (test fixtures do it: faster than migrating); it has what this version needs.
    """
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if not set(metadata.tables) <= tables:
        return False
    return all(
        {c.name for c in table.columns} <= {c["name"] for c in inspector.get_columns(name)}
        for name, table in metadata.tables.items()
    )


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    """Apply our migrations up to ``revision``, tracked in ``co_alembic_version``.

    For applications without an Alembic environment of their own. Takes an
    engine (a transaction is opened and committed) or a connection (the
    caller commits).
    """
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            command.upgrade(_config(connection), revision)
    else:
        command.upgrade(_config(bind), revision)


def downgrade(bind: Engine | Connection, revision: str = "base") -> None:
    """Revert our migrations down to ``revision``.

    ``base`` drops every ``co_*`` table, ``co_alembic_version`` included.
    """
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            _downgrade(connection, revision)
    else:
        _downgrade(bind, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(connection), revision)
    if revision == "base":
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
