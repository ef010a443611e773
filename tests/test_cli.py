"""The connected-objects command."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from connected_objects import cli
from connected_objects.cli import main
from connected_objects.store import schema

GROUP = "connected_objects_tests.commands"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests install distributions, commands looked up in a group of their own."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMANDS", GROUP)
    return tmp_path


def install_commands(root: Path, dist: str, module: str, source: str, commands: dict[str, str]) -> None:
    """Write a module and a ``.dist-info`` declaring ``commands``: what pip would leave behind."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in commands.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}\n")


def test_without_the_demo_distribution_demo_says_how_to_get_it(site: Path) -> None:
    runner = CliRunner()
    for args in (["demo"], ["demo", "--database", "x.sqlite"], ["demo", "--help"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {cli.DEMO_ELSEWHERE}\n"
        assert "pip install connected-objects-demo" in result.output
    assert "demo" in runner.invoke(main, ["--help"]).output


def test_a_distribution_adds_a_command_and_the_real_demo_replaces_the_placeholder(site: Path) -> None:
    source = """
        import click

        @click.command()
        @click.option("--database")
        def demo(database):
            click.echo(f"the real demo on {database}")

        @click.command()
        def hello():
            click.echo("hello from a plugin")
    """
    install_commands(site, "co-plugin", "co_plugin", source, {"demo": "co_plugin:demo", "hello": "co_plugin:hello"})
    runner = CliRunner()
    assert runner.invoke(main, ["demo", "--database", "x.sqlite"]).output == "the real demo on x.sqlite\n"
    assert runner.invoke(main, ["hello"]).output == "hello from a plugin\n"
    assert "hello" in runner.invoke(main, ["--help"]).output


def test_a_distribution_cannot_shadow_a_core_command(site: Path) -> None:
    source = """
        import click

        @click.command()
        def providers():
            click.echo("shadowed")
    """
    install_commands(site, "co-shadow", "co_shadow", source, {"providers": "co_shadow:providers"})
    result = CliRunner().invoke(main, ["providers"])
    assert result.exit_code == 0 and "shadowed" not in result.output
    assert "Installed providers" in result.output


def test_a_broken_command_fails_alone_with_its_distribution_named(site: Path) -> None:
    install_commands(
        site,
        "co-broken",
        "co_broken",
        "import not_installed_anywhere\n",
        {"broken": "co_broken:command", "odd": "co_notcommand:NOT_A_COMMAND"},
    )
    (site / "co_notcommand.py").write_text("NOT_A_COMMAND = 1\n")
    runner = CliRunner()
    broken = runner.invoke(main, ["broken"])
    assert broken.exit_code == 1
    assert "the 'broken' command of co-broken cannot be loaded" in broken.output
    assert "not_installed_anywhere" in broken.output and "Traceback" not in broken.output
    odd = runner.invoke(main, ["odd"])
    assert odd.exit_code == 1 and "not a click command" in odd.output
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and "broken" in listing.output and "schema" in listing.output


def test_schema_check_fails_then_upgrade_fixes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    runner = CliRunner()
    missing = runner.invoke(main, ["schema", "check", "--database", url])
    assert missing.exit_code == 2 and "no SQLite database at" in missing.output
    assert "connected-objects schema upgrade --database" in missing.output
    assert not (tmp_path / "app.sqlite").exists()  # checking creates nothing
    (tmp_path / "app.sqlite").touch()  # a database without our tables
    failed = runner.invoke(main, ["schema", "check", "--database", url])
    assert failed.exit_code == 1 and "connected-objects schema upgrade" in failed.output
    assert runner.invoke(main, ["schema", "upgrade", "--url", url]).exit_code == 0  # the old spelling still works
    ok = runner.invoke(main, ["schema", "check", "--url", url])
    assert ok.exit_code == 0 and "up to date" in ok.output


def test_schema_snippet_and_location() -> None:
    runner = CliRunner()
    assert schema.VERSION_LOCATION in runner.invoke(main, ["schema", "snippet"]).output
    assert runner.invoke(main, ["schema", "location"]).output.strip() == str(schema.location())
