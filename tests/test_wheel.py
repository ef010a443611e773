"""The built wheel carries its migrations: installed outside the checkout, it upgrades a database.

Installed alone, it carries no provider and no demo: ``connected-objects demo`` says how to get
the demo (its own distribution) in one line, instead of failing on an import.
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
from connected_objects import schema

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


def test_wheel_installs_and_upgrades_outside_the_checkout(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is a prerequisite (pip install uv)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    dist = tmp_path / "dist"
    subprocess.run(
        [uv, "build", "--wheel", "--package", "connected-objects", "-o", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
    )
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
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True, env=env)
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
    assert out.stdout.split()[0] == "co_0009"
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
