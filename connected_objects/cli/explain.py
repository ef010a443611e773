"""``connected-objects explain MODEL ID``: why one row is or isn't synced, in one sentence per scope.

It loads the application (``--app``), finds the model by class name (or
``module:Class``), and prints the row's links, its pending and dead changes
with their last errors, and when the next attempt is due::

    $ connected-objects explain --app mypkg.sync:hub Customer 42
    Customer 42: waiting: change 7 retries at 10:42 after a 503
      xero/production/t-1: ...

A model or a key the hub does not know is a usage error (exit 2).

Example::

    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(explain_command, ["--app", ".bad", "Customer", "1"]).exit_code
    2
"""

from __future__ import annotations

import click

from ..util.redaction import redact
from .common import UserError
from .common import app_option
from .common import emit
from .common import load_app

__all__ = ["explain_command"]


@click.command(name="explain")
@app_option
@click.argument("model_name", metavar="MODEL")
@click.argument("key", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole explanation as JSON.")
def explain_command(app_path: str, model_name: str, key: str, as_json: bool) -> None:
    """Why the MODEL row with primary key ID is or isn't synced (MODEL: a class name of the hub's
    models, or module:Class): its links, pending and dead changes, next attempt, in one sentence."""
    from ..exceptions import ConfigurationError
    from ..ops.explain import explain
    from ..ops.explain import find_model
    from ..ops.explain import primary_key

    hub = load_app(app_path)
    try:
        model = find_model(hub, model_name)
        found = explain(hub, model, primary_key(model, key, hub.engine.dialect.name))
    except ConfigurationError as exc:
        raise UserError(redact(str(exc))) from None  # a model or key the hub does not have: usage
    if as_json:
        emit(found.as_dict(), indent=2)
        return
    click.echo(f"{found.model} {found.local_id}: {found.sentence}")
    for item in found.scopes:
        link = f"{item.link.entity} {item.link.foreign_id} ({item.link.status})" if item.link else "not linked"
        click.echo(f"  {item.scope}: {item.sentence}")
        click.echo(f"    connection {item.connection or 'none'}; {link}")
        for change in item.changes:
            error = f": {redact(change.last_error)}" if change.last_error else ""
            click.echo(f"    change {change.id} {change.operation} {change.state}, attempt {change.attempts}{error}")
        if item.next_attempt_at is not None:
            click.echo(f"    next attempt at {item.next_attempt_at.isoformat()}")
