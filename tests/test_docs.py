"""Every ```python block in README.md and docs/**/*.md runs, so the code in the documentation cannot rot.

Each Markdown file's python blocks run in order, in one fresh module, in a
temporary working directory. Blocks that must not run use another fence
language (``sh``, ``toml``, ``text``).

A page may also hold hidden test code, invisible once rendered::

    <!--docs-test
    hub = sandboxes.hub(engine, [Customer, Invoice], "organization", 1)
    -->

It runs in its place among the page's python blocks, in the same module. It
sets up what a fragment takes for granted (a page's blocks may use an
``engine`` or a sign-in class they do not define) and checks what the
blocks did against the providers' sandboxes: the module has ``sandboxes``, a
:class:`Sandboxes` (FakeQuickBooks, FakeXero and FakeConnec behind one
transport), so a payload of the wrong shape in the documentation fails here.
A block that cannot run is marked ``<!--docs-test: skip because …-->`` right
above its fence; a block naming a provider cannot be skipped.

README.md keeps no hidden code: its test code lives here, in :data:`AFTER_BLOCK`,
and runs the same way, right after the block it follows.
"""

from __future__ import annotations

import re
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.queue import outbox

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(
    r"^```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$"
    r"|^<!--docs-test(?P<skip>: skip[^\n]*?)?-->[ \t]*$"
    r"|^<!--docs-test\n(?P<hidden>.*?)^-->[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
#: What a block that targets a provider mentions.
PROVIDERS = re.compile(r"quickbooks|xero|maestrano|connec", re.IGNORECASE)


def _walk(text: str) -> list[tuple[int, str, str]]:
    """The code of a Markdown text in order: (line, code, ``"python"``, ``"hidden"`` or ``"skipped"``)."""
    out: list[tuple[int, str, str]] = []
    skip_next = False
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group("skip"):
            skip_next = True
            continue
        if m.group("hidden") is not None:
            out.append((line + 1, m.group("hidden"), "hidden"))
        elif m.group("lang") == "python":
            out.append((line, m.group("body"), "skipped" if skip_next else "python"))
        skip_next = False
    return out


def code_blocks(text: str) -> list[tuple[int, str, bool]]:
    """The code a Markdown text runs, in order: (line of the fence, code, hidden?)."""
    return [(line, code, kind == "hidden") for line, code, kind in _walk(text) if kind != "skipped"]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text that run, as (line number of the fence, code)."""
    return [(line, code) for line, code, kind in _walk(text) if kind == "python"]


def skipped_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks marked not to run."""
    return [(line, code) for line, code, kind in _walk(text) if kind == "skipped"]


PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

QBO = Scope("quickbooks", "production", "4620816365")
XERO = Scope("xero", "production", "tenant-docs")
CONNEC = Scope("maestrano", "maestrano", "cld-docs")
TOKENS = {"quickbooks": "qbo-docs-token", "xero": "xero-docs-token"}


class Sandboxes:
    """The three providers' sandboxes behind one transport, for the hidden test code of a page.

    Requests go to ``http://quickbooks.test``, ``http://xero.test`` and ``http://connec.test``.
    """

    def __init__(self) -> None:
        self.quickbooks = FakeQuickBooks(tokens={TOKENS["quickbooks"]})
        self.xero = FakeXero(tokens={XERO.account: TOKENS["xero"]})
        self.connec = FakeConnec({"app-maestrano": "secret-key-of-maestrano"})
        self._apps = {
            "quickbooks.test": self.quickbooks.app,
            "xero.test": self.xero.app,
            "connec.test": self.connec.app,
        }
        self.transport = httpx.ASGITransport(self._route)
        self.qbo, self.xero_scope, self.connec_scope = QBO, XERO, CONNEC

    async def _route(self, scope: Any, receive: Any, send: Any) -> None:
        host = dict(scope.get("headers") or []).get(b"host", b"").decode()
        await self._apps[host](scope, receive, send)

    def hub(self, engine: Any, models: list[type], owner_type: str, owner_id: int) -> Hub:
        """An installed hub for ``models`` with the three providers on their sandboxes; the owner connected to each."""
        config = marketplace_config("maestrano")
        config["connec"]["host"] = "http://connec.test"
        vault = Vault([Vault.generate_key()])
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=models,
            providers=[
                QuickBooksProvider(base_url="http://quickbooks.test"),
                XeroProvider(base_url="http://xero.test", webhook_key="docs-key"),
                MaestranoProvider(Marketplaces.from_config({"marketplaces": [config]})),
            ],
            vault=vault,
            transport=self.transport,
        )
        hub.install()
        with hub.session_factory.begin() as s:
            for scope in (QBO, XERO):
                credentials = {"access_token": TOKENS[scope.provider]}
                connections.connect(s, owner_type, owner_id, scope, credentials=credentials, vault=vault)
            connections.connect(s, owner_type, owner_id, CONNEC)
        return hub

    @staticmethod
    def no_dead_changes(hub: Hub) -> None:
        """Every change reached its sandbox (a refused payload ends dead, with the provider's message)."""
        with hub.session_factory() as s:
            dead = outbox.list_changes(s, state="dead")
        assert not dead, [(c.local_type, c.entity, c.last_error) for c in dead]


#: The README's test code, kept out of the page: per page, (text of a python block, code to run right
#: after the first block holding that text), in page order. The README's blocks push two models to the
#: QuickBooks Online and Xero sandboxes; this checks the payloads, then gives the webhook block its app.
AFTER_BLOCK: dict[str, list[tuple[str, str]]] = {
    "README.md": [
        (
            "hub.install()  # every committed",
            """
hub.uninstall()
Base.metadata.create_all(engine)
hub = sandboxes.hub(engine, [Customer, Invoice], "organization", 1)
with hub.session_factory.begin() as s:
    s.add(Organization(id=1))
    s.add(Customer(id=1, organization_id=1, name="Acme", email="ap@acme.example"))
    s.add(Invoice(id=1, organization_id=1, customer_id=1, number="INV-1", issued_on=dt.date(2026, 11, 30),
                  due_on=dt.date(2026, 12, 30), total=Decimal("120.50")))
hub.drain()
hub.drain()
sandboxes.no_dead_changes(hub)
[(customer_id, qbo_customer)] = sandboxes.quickbooks.live(sandboxes.qbo.account, "Customer").items()
assert qbo_customer["PrimaryEmailAddr"] == {"Address": "ap@acme.example"}
[qbo_invoice] = sandboxes.quickbooks.live(sandboxes.qbo.account, "Invoice").values()
assert qbo_invoice["CustomerRef"] == {"value": customer_id}
dated = (qbo_invoice["DocNumber"], qbo_invoice["TxnDate"], qbo_invoice["DueDate"])
assert dated == ("INV-1", "2026-11-30", "2026-12-30")
assert qbo_invoice["Line"] == [{"DetailType": "SalesItemLineDetail", "Amount": 120.5,
                                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": 120.5}}]
[contact_id] = sandboxes.xero.live(sandboxes.xero_scope.account, "Contacts")
[xero_invoice] = sandboxes.xero.live(sandboxes.xero_scope.account, "Invoices").values()
assert (xero_invoice["Type"], xero_invoice["Contact"]) == ("ACCREC", {"ContactID": contact_id})
[xero_line] = xero_invoice["LineItems"]  # as sent, plus the LineItemID and LineAmount Xero adds
assert xero_line.pop("LineItemID") and xero_line.pop("LineAmount") == 120.5
assert xero_line == {"Description": "INV-1", "Quantity": 1, "UnitAmount": 120.5, "AccountCode": "200"}
assert xero_invoice["Total"] == 120.5
hub.uninstall()

from fastapi import FastAPI

fastapi_app = FastAPI()
""",
        ),
    ],
}


def test_the_docs_exist_and_hold_code():
    assert len(PAGES) > 1, "docs/ has no Markdown pages"
    assert sum(len(python_blocks(p.read_text(encoding="utf-8"))) for p in PAGES) > 0


def test_fences_are_found_and_others_skipped():
    text = "x\n```python\na = 1\n```\n\n```sh\nrm -rf /\n```\n```python\nb = 2\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n"), (9, "b = 2\n")]


def test_hidden_code_runs_in_place_and_a_skip_marker_skips_one_block():
    text = (
        "```python\na = 1\n```\n<!--docs-test\nassert a == 1\n-->\n"
        "<!--docs-test: skip a fragment-->\n```python\nb\n```\n"
    )
    assert code_blocks(text) == [(1, "a = 1\n", False), (5, "assert a == 1\n", True)]
    assert skipped_blocks(text) == [(8, "b\n")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_block_naming_a_provider_is_skipped(page):
    text = page.read_text(encoding="utf-8")
    assert [line for line, code in skipped_blocks(text) if PROVIDERS.search(code)] == []


def test_the_readme_blocks_for_quickbooks_and_xero_run_against_their_sandboxes():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    ran = " ".join([*(code for _line, code, _hidden in code_blocks(text)), *(c for _, c in AFTER_BLOCK["README.md"])])
    wanted = ("quickbooks import mappings", "xero import mappings", "sandboxes.hub(")
    for name in wanted:
        assert name in ran


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = str(page.relative_to(ROOT))
    # a real module, so SQLAlchemy can resolve the annotations of models declared on the page
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    module.__dict__["sandboxes"] = Sandboxes()
    after = list(AFTER_BLOCK.get(name, []))
    for number, (line, code, hidden) in enumerate(code_blocks(page.read_text(encoding="utf-8")), start=1):
        runs = [("\n" * line + code, name, "hidden test code" if hidden else "python block")]
        while after and not hidden and after[0][0] in code:
            runs.append((after.pop(0)[1], f"tests/test_docs.py AFTER_BLOCK[{name!r}]", "test code after python block"))
        for source, filename, kind in runs:
            try:
                # blank lines in front, so a traceback's line number is the line in the page
                exec(compile(source, filename, "exec"), module.__dict__)
            except Exception as exc:
                detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                pytest.fail(f"{name}, {kind} {number} (at line {line}) failed:\n{detail}", pytrace=False)
    assert not after, f"{name}: no python block holds {after[0][0]!r}, which AFTER_BLOCK's test code follows"
