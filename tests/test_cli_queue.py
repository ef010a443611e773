"""``connected-objects changes`` and ``events``: one factory, the same flags and shapes, and listing never writes."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import select

from connected_objects.cli import main
from connected_objects.cli.queue import changes
from connected_objects.cli.queue import events
from connected_objects.queue import journal
from connected_objects.testing.invoicing import Customer

from .conftest import ACME
from .conftest import GLOBEX


def dump(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: equal before and after means nothing was written."""
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in tables.sorted_tables}


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_listing_writes_nothing_and_shows_what_is_still_in_the_journal(engine, hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="folded"))
    with engine.begin() as conn:  # a worker folds it into the outbox: a pending change with an id
        assert journal.absorb(conn) == 1
    with hub.session_factory.begin() as s:
        s.add(Customer(id=2, organization_id=1, name="captured"))
        s.get(Customer, 1).name = "edited since"
    url = ["--database", engine.url.render_as_string(hide_password=False)]
    before = dump(engine)
    assert before["co_journal"] and before["co_outbox"]

    runner = CliRunner()
    pending = runner.invoke(main, ["changes", "list", *url, "--state", "pending", "--json"])
    assert pending.exit_code == 0, pending.output
    rows = [(r["id"] is None, r["local_id"], r["state"]) for r in lines(pending.output)]
    # the outbox's change first, then the journal's (an object edited since shows in both)
    assert rows[0] == (False, "1", "pending")
    assert sorted(rows[1:]) == [(True, "1", "pending"), (True, "2", "pending")]
    assert (
        runner.invoke(main, ["changes", "list", *url, "--state", "pending", "--limit", "2", "--json"]).output.count(
            "\n"
        )
        == 2
    )
    table = runner.invoke(main, ["changes", "list", *url, "--state", "pending"], terminal_width=200)
    assert table.exit_code == 0 and table.output.count("journal") == 2, table.output
    for command in (
        ["changes", "list", *url],
        ["changes", "list", *url, "--state", "in_flight", "--json"],
        ["changes", "list", *url, "--state", "pending", "--scope", str(ACME)],
        ["changes", "show", *url, str(lines(pending.output)[0]["id"])],
        ["events", "list", *url],
        ["events", "list", *url, "--state", "pending", "--json"],
        ["status", *url, "--json"],
    ):
        result = runner.invoke(main, command)
        assert result.exit_code == 0, (command, result.output)
    assert dump(engine) == before  # not one row written, the journal still unfolded


def test_scope_error_and_after_filter_both_lists(engine, hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=i, organization_id=1, name=f"c{i}") for i in (1, 2, 3)])
    with engine.begin() as conn:
        journal.absorb(conn)
    url = ["--database", engine.url.render_as_string(hide_password=False)]
    runner = CliRunner()

    def listed(*args: str) -> list[dict[str, object]]:
        result = runner.invoke(main, ["changes", "list", *url, "--state", "pending", "--json", *args])
        assert result.exit_code == 0, result.output
        return lines(result.output)

    everything = listed()
    assert [r["local_id"] for r in everything] == ["1", "2", "3"]
    assert listed("--scope", str(GLOBEX)) == []
    assert [r["local_id"] for r in listed("--after", str(everything[0]["id"]))] == ["2", "3"]
    assert listed("--error", "nothing failed") == []
    bad = runner.invoke(main, ["events", "list", *url, "--scope", "sandbox"])
    assert bad.exit_code == 2 and "is not provider/marketplace/account" in bad.output


def test_changes_and_events_are_one_factorys_groups():
    assert sorted(changes.commands) == sorted(events.commands) == ["discard", "list", "retry", "show"]
    for name in ("list", "retry", "discard"):
        assert [p.name for p in changes.commands[name].params] == [p.name for p in events.commands[name].params]
    show_changes = [p.name for p in changes.commands["show"].params]
    assert [p.name for p in events.commands["show"].params] == [*show_changes, "payload_bytes"]
