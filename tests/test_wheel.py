"""The built wheels, installed outside the checkout, as the docs' "Install" section says.

``uv build --all-packages`` (the documented command) builds the core, the three providers and
the demo. The core wheel carries its migrations: installed alone it upgrades a database, carries
no provider and no demo (``connected-objects demo`` says how to get it in one line). The four
library wheels installed together into a fresh virtual environment find each other through their
entry points, import (python3-saml, xmlsec and lxml agree), map rows and start a hub.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from pathlib import Path
from sqlalchemy import create_engine, inspect
import connected_objects
from connected_objects.store import schema

assert "{root}" not in connected_objects.__file__, connected_objects.__file__
location = schema.location()
assert (location / "versions").is_dir(), location
assert "{root}" not in str(location), location
engine = create_engine("sqlite:///" + sys.argv[1])
schema.upgrade(engine)
with engine.connect() as conn:
    schema.check(conn)
    print(schema.current(conn), sorted(t for t in inspect(conn).get_table_names() if t.startswith("co_")))
engine.dispose()
"""


ENV = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT", "CONNECTED_OBJECTS_"))}


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is a prerequisite (pip install uv)")
    return uv


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution of the workspace, built as the docs say: ``uv build --all-packages``."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [_uv(), "build", "--all-packages", "-o", str(out)], cwd=ROOT, capture_output=True, text=True, env=ENV
    )
    assert built.returncode == 0, built.stderr
    return out


def _venv(where: Path) -> Path:
    venv = where / "venv"
    subprocess.run([_uv(), "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True, env=ENV)
    return venv


def test_wheel_installs_and_upgrades_outside_the_checkout(tmp_path: Path, dist: Path) -> None:
    uv = _uv()
    env = ENV
    wheels = list(dist.glob("connected_objects-*.whl"))
    assert len(wheels) == 1, wheels
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "connected_objects/migrations/env.py" in names
    assert any(n.startswith("connected_objects/migrations/versions/co_0001") for n in names)
    assert any(n.startswith("connected_objects/migrations/versions/co_0002") for n in names)
    assert any(n.startswith("connected_objects/migrations/versions/co_0003") for n in names)
    assert any(n.startswith("connected_objects/migrations/versions/co_0004") for n in names)
    assert any(n.startswith("connected_objects/migrations/versions/co_0005") for n in names)
    assert any(n.startswith("connected_objects/migrations/versions/co_0009") for n in names)
    # the admin pages' templates and stylesheet travel with the code
    assert "connected_objects/admin/templates/changes.html" in names
    assert "connected_objects/admin/static/admin.css" in names
    assert not [n for n in names if "demo" in n or n.startswith("connected_objects_")], names
    venv = _venv(tmp_path)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), str(wheels[0])], check=True, capture_output=True, env=env
    )
    out = subprocess.run(
        [str(python), "-c", SCRIPT.format(root=ROOT), str(tmp_path / "scratch.sqlite")],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.stdout.split()[0] == "co_0016"
    assert "co_connected_object" in out.stdout and "co_outbox" in out.stdout and "co_journal" in out.stdout
    demo = subprocess.run(
        [str(venv / "bin" / "connected-objects"), "demo"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert demo.returncode == 1, (demo.stdout, demo.stderr)
    assert "Traceback" not in demo.stdout + demo.stderr
    assert demo.stdout == ""
    assert demo.stderr.splitlines() == [
        "Error: the demo is a separate distribution: `uv run connected-objects demo` from a checkout, "
        "or `pip install connected-objects-demo`"
    ]
    assert not (tmp_path / "connected-objects-demo.sqlite").exists()


EVERY_PROVIDER = """
from types import SimpleNamespace

from sqlalchemy import ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import connected_objects_maestrano.sso  # python3-saml, xmlsec and lxml were built to agree
from connected_objects import Hub
from connected_objects import connected
from connected_objects.plugin import registry
from connected_objects.store import schema
from connected_objects.plugin.provider import required_credentials
from connected_objects_maestrano.mappings import OrganizationMapping
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_xero.mappings import ContactMapping

for name in ("maestrano", "quickbooks", "xero"):
    provider = registry.get(name)  # found through its entry point, validated against the contract
    assert provider.name == name
row = SimpleNamespace(name="Acme", email="ap@acme.example")
print(CustomerMapping(name="name", email="email").to_remote(row, {}))
print(ContactMapping(name="name", email="email").to_remote(row, {}))
print(OrganizationMapping(name="name", email="email").to_remote(row, {}))


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", owner="organization_id", mapping=CustomerMapping(name="name"))
@connected("xero", entity="Contacts", owner="organization_id", mapping=ContactMapping(name="name"))
@connected("maestrano", entity="organizations", owner="organization_id", mapping=OrganizationMapping(name="name"))
class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(100))


engine = create_engine("sqlite:///app.sqlite")
Base.metadata.create_all(engine)
schema.upgrade(engine)
hub = Hub(sessionmaker(engine), models=[Customer])
hub.install()  # the start-up checks pass: every provider known, every entity declared
print("started", sorted(required_credentials(registry.get(n)) for n in ("quickbooks", "xero")))
"""


def test_the_four_wheels_install_together_and_work_outside_the_checkout(tmp_path: Path, dist: Path) -> None:
    names = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    assert names == [
        "connected_objects",
        "connected_objects_demo",
        "connected_objects_maestrano",
        "connected_objects_quickbooks",
        "connected_objects_xero",
    ]
    four = [p for p in dist.glob("*.whl") if "demo" not in p.name]
    venv = _venv(tmp_path)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [_uv(), "pip", "install", "--python", str(python), *map(str, four)], capture_output=True, text=True, env=ENV
    )
    assert installed.returncode == 0, installed.stderr
    project = tmp_path / "project"
    project.mkdir()
    out = subprocess.run([str(python), "-c", EVERY_PROVIDER], cwd=project, capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "{'DisplayName': 'Acme', 'PrimaryEmailAddr': {'Address': 'ap@acme.example'}}"
    assert lines[1].startswith("{'Name': 'Acme'") and "ap@acme.example" in lines[1]
    assert "'name': 'Acme'" in lines[2]
    assert lines[-1] == "started [('access_token',), ('access_token',)]"
    listed = subprocess.run(
        [str(venv / "bin" / "connected-objects"), "providers"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**ENV, "COLUMNS": "200"},
    )
    assert listed.returncode == 0, listed.stderr
    for dist_name in ("connected-objects-maestrano", "connected-objects-quickbooks", "connected-objects-xero"):
        assert dist_name in listed.stdout, listed.stdout
    assert listed.stdout.count("ok (") == 3, listed.stdout
    for module in ("connected_objects", "connected_objects_maestrano", "connected_objects_quickbooks"):
        where = subprocess.run(
            [str(python), "-c", f"import {module}; print({module}.__file__)"],
            cwd=project,
            capture_output=True,
            text=True,
            env=ENV,
        )
        assert str(venv) in where.stdout and str(ROOT) not in where.stdout, where
