"""The connected-objects command."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from connected_objects import schema
from connected_objects.cli import main


def test_demo_builds_a_schema_and_lists_providers(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--database", str(tmp_path / "demo.sqlite")])
    assert result.exit_code == 0, result.output
    assert f"at {schema.head()}" in result.output
    for name in ("maestrano", "quickbooks", "xero"):
        assert name in result.output


def test_schema_check_fails_then_upgrade_fixes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    runner = CliRunner()
    failed = runner.invoke(main, ["schema", "check", "--url", url])
    assert failed.exit_code == 1 and "connected-objects schema upgrade" in failed.output
    assert runner.invoke(main, ["schema", "upgrade", "--url", url]).exit_code == 0
    ok = runner.invoke(main, ["schema", "check", "--url", url])
    assert ok.exit_code == 0 and "up to date" in ok.output


def test_schema_snippet_and_location() -> None:
    runner = CliRunner()
    assert schema.VERSION_LOCATION in runner.invoke(main, ["schema", "snippet"]).output
    assert runner.invoke(main, ["schema", "location"]).output.strip() == str(schema.location())
