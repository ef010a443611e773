"""The CLI's tables read whole at 80 columns and through a pipe: every header, every scope, never an ellipsis."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from sqlalchemy import create_engine

from connected_objects import Scope
from connected_objects.cli.tables import Listing
from connected_objects.receive import polling
from connected_objects.store import identity
from connected_objects.store import schema

SCOPES = [
    Scope("xero", "production", "0b9c4c51-5c5a-4c2e-a6f3-9c6d3b1b9f10"),
    Scope("quickbooks", "production", "9341453012345678"),
    Scope("maestrano", "maestrano-uat", "cld-4k9q-acme-holdings-limited"),
]
HEADERS = (
    "connection",
    "onboarding",
    "linked",
    "tombstoned",
    "pending",
    "in flight",
    "dead",
    "events",
    "parked",
    "dead events",
    "last error",
)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    engine = create_engine(url)
    schema.upgrade(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as db:
        for n, scope in enumerate(SCOPES):
            identity.link(db, scope, "Contacts", f"remote-{n}", "customer", n)
            polling.make_due(db, scope, ["Contacts", "Invoices"], now=now)
    engine.dispose()
    return url


def _cli(*args: str) -> str:
    """Run the installed command with its output piped, at 80 columns: what ``… | cat`` shows."""
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-m", "connected_objects", *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_piped_status_at_80_columns_prints_every_header_and_scope_in_full(tmp_path: Path) -> None:
    url = _database(tmp_path)
    out = _cli("status", "--database", url)
    assert "…" not in out and "..." not in out, out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    lines = out.splitlines()
    for scope in SCOPES:
        assert str(scope) in lines, out  # the scope whole, on its own line
        for entity in ("Contacts", "Invoices"):
            assert f"{scope} {entity}" in lines, out  # each of its polls too
    for header in HEADERS:
        assert sum(line.strip().startswith(header + " ") for line in lines) >= len(SCOPES), (header, out)
    for header in ("last poll", "next poll", "lag", "last poll error", "last reconcile"):
        assert any(line.strip().startswith(header + " ") for line in lines), (header, out)
    # the same figures as --json
    scopes = [json.loads(line)["scope"] for line in _cli("status", "--database", url, "--json").splitlines()]
    assert sorted(scopes) == sorted(str(s) for s in SCOPES)


def test_a_table_that_fits_stays_side_by_side_and_one_that_does_not_becomes_blocks() -> None:
    listing = Listing("t", ("scope", "pending"))
    listing.add(str(SCOPES[0]), "3")
    wide = Console(width=listing.width(), color_system=None, record=True)
    listing.print(wide)
    assert "│ xero/production/0b9c4c51-5c5a-4c2e-a6f3-9c6d3b1b9f10 │ 3" in wide.export_text()
    narrow = Console(width=listing.width() - 1, color_system=None, record=True)
    listing.print(narrow)
    assert narrow.export_text().splitlines()[2:] == [str(SCOPES[0]), "  pending  3"]


def test_an_empty_listing_is_one_line_saying_so_at_any_width() -> None:
    for width in (80, 200):
        console = Console(width=width, color_system=None, record=True)
        Listing("dead changes", ("id", "scope", "last error")).print(console)
        assert console.export_text() == "dead changes: none\n"


def test_every_listing_command_has_json(tmp_path: Path) -> None:
    url = _database(tmp_path)
    for args in (
        ("providers", "--json"),
        ("status", "--database", url, "--json"),
        ("workers", "--database", url, "--json"),
        ("changes", "list", "--database", url, "--json"),
        ("events", "list", "--database", url, "--json"),
    ):
        for line in _cli(*args).splitlines():
            assert isinstance(json.loads(line), dict), (args, line)
    assert {json.loads(line)["provider"] for line in _cli("providers", "--json").splitlines()} >= {
        "maestrano",
        "quickbooks",
        "xero",
    }
