"""The example apps against the sandboxes, over real loopback HTTP, one test run for each: Alembic with
our branch, SSO into the app's own login, an invoice created through the API and pushed by a worker.

FastAPI is served as an ASGI app (uvicorn), Flask as a WSGI app (werkzeug)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import FakeIdP
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_maestrano.testing import serve_wsgi
from sqlalchemy import create_engine
from sqlalchemy import inspect

from connected_objects.cli import main
from connected_objects.testing.sandbox import serve

HERE = Path(__file__).resolve().parent
KEY = "maestrano"


@dataclass(frozen=True)
class Example:
    folder: str  # under examples/
    package: str  # its application package, importable from its folder
    app: str  # the web app's name in ``{package}.web``
    server: Callable[[Any], AbstractContextManager[str]]  # serves that app on loopback, yields its URL


EXAMPLES = [
    pytest.param(Example("fastapi_app", "fastapi_invoicing", "app", serve), id="fastapi"),
    pytest.param(Example("flask_app", "flask_invoicing", "application", serve_wsgi), id="flask"),
]


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_app_signs_in_through_sso_and_its_invoices_reach_connec(
    example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = HERE / example.folder
    monkeypatch.syspath_prepend(str(folder))  # as when run from the example's folder
    url = f"sqlite:///{tmp_path / 'invoicing.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    config = Config(str(folder / "alembic.ini"))
    command.upgrade(config, "heads")
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"organization", "invoice", "co_journal", "co_outbox", "co_connected_object"} <= tables

    idp = FakeIdP(f"https://idp.{KEY}.example")
    connec = FakeConnec({f"app-{KEY}": f"secret-key-of-{KEY}"})
    connec.seed("cld-7", "invoices", [{"title": "ALREADY-THERE", "amount": 500}])
    sync = importlib.import_module(f"{example.package}.sync")
    web = importlib.import_module(f"{example.package}.web")

    web.reset()  # the hub and routes are made from this test's environment, on first use
    with serve(connec.app) as connec_url, example.server(getattr(web, example.app)) as app_url:
        market = marketplace_config(KEY, idp_certificate=idp.certificate)
        market["connec"]["host"] = connec_url
        market["app"]["host"] = app_url
        monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps({"marketplaces": [market]}))
        with httpx.Client(base_url=app_url) as browser:
            assert browser.get("/invoices").status_code == 401  # not signed in
            # sign in as a browser does: start here (the binding cookie is kept), the IdP answers
            started = browser.get(f"/mno-enterprise/{KEY}/saml/initialize")
            assert started.status_code == 302, started.text
            form = idp.answer(
                started.headers["location"],
                {"uid": "usr-1", "email": "ada@acme.example", "group_uid": "cld-7", "group_name": "Acme"},
            )
            with httpx.Client(base_url=app_url) as elsewhere:  # the same answer from another browser: login CSRF
                assert elsewhere.post(f"/mno-enterprise/{KEY}/saml/consume", data=form).status_code == 403
            signed_in = browser.post(f"/mno-enterprise/{KEY}/saml/consume", data=form)
            assert signed_in.status_code == 302 and signed_in.headers["location"] == "/invoices"
            created = browser.post("/invoices", json={"number": "INV-1", "total_cents": 1200})
            assert created.status_code == 201, created.text

            # the worker, as deployed: found by import path, run until nothing is left
            worker = CliRunner().invoke(main, ["worker", "--app", f"{example.package}.sync:hub", "--until-idle"])
            assert worker.exit_code == 0, worker.output

            listed = {i["number"] for i in browser.get("/invoices").json()}
        sync.hub().uninstall()
    assert listed == {"ALREADY-THERE", "INV-1"}  # the first import brought the group's invoice in
    assert {r["title"] for r in connec.live("cld-7", "invoices").values()} == {"ALREADY-THERE", "INV-1"}
    assert connec.auth_seen["cld-7"] == {f"app-{KEY}"}
