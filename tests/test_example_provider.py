"""The guide's example provider (``docs/writing-a-provider.md``, "A provider on the kit"), built and run.

The provider is taken from the page as written, so the guide cannot drift from what works: it stays
about a hundred lines, imports nothing of the core but :mod:`connected_objects.plugin`, passes the
conformance suite against the generic sandbox (round trip, idempotent create, stale version, change
feed, webhook signature), and its webhook route stores a signed delivery in the inbox once, through a
hub, while a forged or malformed one stores nothing.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects.queue import inbox
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import webhook_delivery
from connected_objects.web import Request

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-provider.md"
#: The first line of the guide's example provider block.
MARKER = "# notes_provider.py"
SECRET = "notes-webhook-secret-1"


def example_source() -> str:
    """The guide's ```python block that starts with :data:`MARKER`."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if block.startswith(MARKER)]
    assert len(found) == 1, f"{GUIDE.name} holds {len(found)} blocks starting with {MARKER!r}"
    return found[0]


def load() -> types.ModuleType:
    """The example, as the module ``notes_provider`` (a real module, so its classes pickle and print well)."""
    module = types.ModuleType("notes_provider")
    sys.modules[module.__name__] = module
    exec(compile(example_source(), str(GUIDE), "exec"), module.__dict__)
    return module


notes = load()


def core_modules(source: str) -> set[str]:
    """The ``connected_objects`` modules ``source`` imports (any depth)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "connected_objects"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "connected_objects":
            found.add(node.module or "")
    return found


def test_the_example_is_about_a_hundred_lines_on_the_kit_alone():
    source = example_source()
    assert 80 <= len(source.splitlines()) <= 110
    assert core_modules(source) == {"connected_objects.plugin"}


def hub_for(engine, provider) -> Hub:
    hub = Hub(sessionmaker(engine), models=[], providers=[provider])
    hub.install()
    return hub


class TestNotesProvider(ProviderConformance):
    entity = "notes"

    @pytest.fixture
    def setup(self, sqlite_engine):
        self.sandbox = Sandbox()
        provider = notes.NotesProvider(base_url="http://sandbox", webhook_secret=SECRET)
        hub = hub_for(sqlite_engine, provider)
        yield Setup(
            provider=provider,
            scope=Scope("notes", "production", "acme"),
            credentials={"token": "t"},
            transport=httpx.ASGITransport(self.sandbox.app),
            webhooks=hub.webhooks(),
        )
        hub.uninstall()

    def sample(self, n):
        return {"text": f"note {n}"}

    def changed(self, payload):
        return {**payload, "text": payload["text"] + " (edited)"}

    def seed(self, setup, count):
        self.sandbox.seed("acme", "notes", [self.sample(n) for n in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = webhook_delivery([{"account": "acme", "entity": "notes", "id": foreign_id}], secret=SECRET)
        if not valid:
            headers["x-sandbox-signature"] = "forged"
        return "/notes/webhooks", body, headers


def test_a_signed_delivery_is_stored_once_and_a_forged_or_malformed_one_stores_nothing(sqlite_engine):
    provider = notes.NotesProvider(base_url="http://sandbox", webhook_secret=SECRET)
    hub = hub_for(sqlite_engine, provider)
    app = hub.webhooks()

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = app.handle(Request("POST", "/notes/webhooks", headers, body))
        return response.status, response.body

    events = [{"account": "acme", "entity": "notes", "id": "7"}, {"account": "acme", "entity": "tags", "id": "1"}]
    body, headers = webhook_delivery(events, secret=SECRET)
    assert post(body, headers) == (200, b'{"received":1,"stored":1}')  # tags: not a note, left out
    assert post(body, headers) == (200, b'{"received":1,"stored":0}')  # a redelivery
    assert post(body, {**headers, "x-sandbox-signature": "forged"})[0] == 401
    bad, bad_headers = webhook_delivery([{"account": "acme", "entity": "notes"}], secret=SECRET)
    assert post(bad, bad_headers)[0] == 400
    with hub.session_factory() as session:
        stored = inbox.list_events(session)
    assert [(e.provider, e.marketplace, e.account, e.entity) for e in stored] == [
        ("notes", "production", "acme", "notes")
    ]
    assert provider.decode_event("notes", stored[0].payload) == "7"
    hub.uninstall()
