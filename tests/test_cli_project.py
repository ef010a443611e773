"""The command as a user runs it: the installed ``connected-objects`` script, from a fresh project directory.

Each test writes a small application (``myapp/sync.py``) into ``tmp_path`` and runs the console
script there as a subprocess — not ``python -m``, which would put the directory on ``sys.path``
by itself. Every user error is one ``Error: ...`` line on stderr that says what to do, never a
traceback; usage errors exit 2; read-only commands leave no file behind.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("connected-objects")

APP = """
from sqlalchemy import ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from connected_objects import FieldMapping, Hub

from connected_objects import connected
from connected_objects.testing import MemoryProvider


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("memory", entity="contacts", mapping=FieldMapping({"name": "Name"}), owner="organization_id")
class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(100))


engine = create_engine("sqlite:///app.sqlite")
hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Customer], providers=[MemoryProvider()])
"""

SEED = """
from connected_objects import Scope, connections
from connected_objects.store import schema
from myapp.sync import Base, Customer, Organization, engine, hub

Base.metadata.create_all(engine)
schema.upgrade(engine)
hub.install()
with hub.session_factory.begin() as s:
    s.add(Organization(id=1))
    s.flush()
    connections.connect(s, "organization", 1, Scope("memory", "test", "acme"))
    s.add_all(Customer(id=i, organization_id=1, name=f"c{i}") for i in range(1, 21))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not SCRIPT.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}: run uv sync")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "sync.py").write_text(textwrap.dedent(APP))
    return tmp_path


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTED_OBJECTS_", "PYTHONPATH"))}
    return {**clean, "CONNECTED_OBJECTS_DISABLE_PROVIDER_AUTOLOAD": "1"}


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=project, capture_output=True, text=True, env=env(), timeout=120, check=False
    )


def seed(project: Path) -> None:
    subprocess.run([sys.executable, "-c", SEED], cwd=project, check=True, env=env(), timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *wanted: str) -> str:
    """The result failed with ``code`` and exactly one ``Error:`` line holding each of ``wanted``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for text in wanted:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_app_is_found_in_the_current_directory_and_module_alone_means_its_hub(project: Path) -> None:
    seed(project)
    for app in ("myapp.sync", "myapp.sync:hub"):
        result = run(project, "status", "--app", app, "--json")
        assert result.returncode == 0, result.stderr
        assert '"scope": "memory/test/acme"' in result.stdout


def test_an_app_typo_is_one_line(project: Path) -> None:
    one_line_error(run(project, "status", "--app", "myapp.snyc"), 2, "cannot import myapp.snyc", "project's directory")
    one_line_error(run(project, "status", "--app", "myapp.sync:hbu"), 2, "Did you mean 'hub'?")


def test_read_only_commands_refuse_a_missing_sqlite_file_and_create_none(project: Path) -> None:
    url = "sqlite:///missing.sqlite"
    for args in (
        ["status", "--database", url],
        ["changes", "list", "--database", url],
        ["changes", "show", "1", "--database", url],
        ["events", "list", "--database", url],
        ["schema", "check", "--database", url],
        ["status", "--url", url],  # the old spelling, still accepted
        ["status", "--app", "myapp.sync"],  # the app's own engine points at a missing app.sqlite
        ["changes", "list", "--app", "myapp.sync"],
    ):
        one_line_error(run(project, *args), 2, "no SQLite database at", "connected-objects schema upgrade --database")
    assert not (project / "missing.sqlite").exists()
    assert not (project / "app.sqlite").exists()


def test_missing_tables_name_the_migration_command(project: Path) -> None:
    (project / "app.sqlite").touch()  # the database exists, our tables do not
    for args in (
        ["status", "--app", "myapp.sync"],
        ["changes", "list", "--database", "sqlite:///app.sqlite"],
        ["events", "list", "--app", "myapp.sync"],
        ["worker", "--app", "myapp.sync", "--until-idle"],
    ):
        one_line_error(run(project, *args), 1, "connected-objects tables are missing", "alembic upgrade heads")


def test_bad_scopes_and_unknown_providers_are_usage_errors_with_a_suggestion(project: Path) -> None:
    seed(project)
    one_line_error(
        run(project, "pull", "--app", "myapp.sync", "--scope", "memory/test", "--entity", "contacts"),
        2,
        "is not provider/marketplace/account",
    )
    one_line_error(
        run(project, "pull", "--app", "myapp.sync", "--scope", "memroy/test/acme", "--entity", "contacts"),
        2,
        "Did you mean 'memory'?",
    )
    one_line_error(
        run(project, "worker", "--app", "myapp.sync", "--provider", "memroy", "--until-idle"),
        2,
        "--provider",
        "Did you mean 'memory'?",
    )


def test_a_bad_database_url_is_a_usage_error(project: Path) -> None:
    one_line_error(run(project, "status", "--database", "not a url"), 2, "is not a database URL")


def test_one_database_flag_across_commands(project: Path) -> None:
    for args in (["status"], ["changes", "list"], ["changes", "retry"], ["events", "show"], ["schema", "check"]):
        shown = run(project, *args, "--help").stdout
        assert "--database URL" in shown, (args, shown)
        assert "--url" not in shown, (args, shown)  # a hidden alias


def test_until_idle_is_quiet_when_piped(project: Path) -> None:
    seed(project)
    result = run(project, "worker", "--app", "myapp.sync", "--until-idle", "--poll", "0.01")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert "pushed=20" in result.stdout
    assert len(result.stdout.splitlines()) == 1, result.stdout  # the summary whole on one line, not wrapped at 80


def test_until_idle_shows_progress_on_a_terminal(project: Path) -> None:
    seed(project)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(SCRIPT), "worker", "--app", "myapp.sync", "--until-idle", "--poll", "0.01"],
        cwd=project,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**env(), "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, seen
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))  # colours and cursor moves
    assert "until idle:" in text and "pushed" in text, text
    assert "pushed=20" in text


def test_the_application_s_start_up_mistakes_are_one_line_exit_1(project: Path) -> None:
    seed(project)
    sync = (project / "myapp" / "sync.py").read_text()
    (project / "myapp" / "typo.py").write_text(
        sync.replace('FieldMapping({"name": "Name"})', 'FieldMapping({"nmae": "Name"})')
    )
    (project / "myapp" / "unknown.py").write_text(sync.replace('@connected("memory"', '@connected("memroy"'))
    one_line_error(
        run(project, "worker", "--app", "myapp.typo", "--until-idle"), 1, "importing myapp.typo", "Did you mean 'name'?"
    )
    one_line_error(
        run(project, "worker", "--app", "myapp.unknown", "--until-idle"),
        1,
        "@connected to 'memroy'",
        "Did you mean 'memory'?",
    )
