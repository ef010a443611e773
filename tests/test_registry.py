"""Provider discovery through real (fake) distributions on sys.path, validation and registration."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connected_objects import DuplicateProvider
from connected_objects import ProviderLoadError
from connected_objects import ProviderNotFound
from connected_objects import ProviderValidationError
from connected_objects.plugin import registry
from connected_objects.plugin.provider import Provider
from connected_objects.testing import MemoryProvider

GOOD = """
from connected_objects.plugin.provider import API_VERSION, Limits

class {cls}:
    name = {name!r}
    api_version = API_VERSION
    entities = frozenset({{"things"}})

    def limits(self, scope):
        return Limits()

    def client(self, scope, http, credentials):
        raise NotImplementedError
"""


def install_fake_distribution(root: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
    """Write a module and a ``.dist-info`` with entry points: what pip would leave behind."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_installed_first_party_providers_are_listed_without_importing() -> None:
    import sys

    for name in ("connected_objects_maestrano", "connected_objects_quickbooks", "connected_objects_xero"):
        sys.modules.pop(name, None)
    names = registry.names()
    assert {"maestrano", "quickbooks", "xero"} <= set(names)
    assert "connected_objects_xero" not in sys.modules
    assert registry.get("xero").name == "xero"
    assert "connected_objects_xero" in sys.modules


def test_fake_distribution_is_discovered(site: Path) -> None:
    install_fake_distribution(
        site,
        "connected_objects_fakeprov",
        "fakeprov_mod",
        GOOD.format(cls="Fake", name="fakeprov"),
        {"fakeprov": "fakeprov_mod:Fake"},
    )
    assert "fakeprov" in registry.names()
    provider = registry.get("fakeprov")
    assert isinstance(provider, Provider)
    assert registry.get("fakeprov") is provider  # cached


def test_wrong_name_is_refused_naming_the_plugin(site: Path) -> None:
    install_fake_distribution(
        site, "badname", "badname_mod", GOOD.format(cls="P", name="other"), {"badname": "badname_mod:P"}
    )
    with pytest.raises(ProviderValidationError, match=r"'badname'.*name='other'.*entry-point name") as info:
        registry.get("badname")
    assert info.value.provider == "badname"


def test_missing_attribute_is_refused_naming_it(site: Path) -> None:
    source = GOOD.format(cls="P", name="noclient").replace("def client", "def not_client")
    install_fake_distribution(site, "noclient", "noclient_mod", source, {"noclient": "noclient_mod:P"})
    with pytest.raises(ProviderValidationError, match=r"'noclient'.*lacks client"):
        registry.get("noclient")


def test_wrong_api_version_and_no_entities_are_refused(site: Path) -> None:
    old = GOOD.format(cls="P", name="oldapi").replace("api_version = API_VERSION", "api_version = 0")
    empty = GOOD.format(cls="P", name="empty").replace('frozenset({"things"})', "frozenset()")
    install_fake_distribution(site, "oldapi", "oldapi_mod", old, {"oldapi": "oldapi_mod:P"})
    install_fake_distribution(site, "empty", "empty_mod", empty, {"empty": "empty_mod:P"})
    with pytest.raises(ProviderValidationError, match="api_version=0"):
        registry.get("oldapi")
    with pytest.raises(ProviderValidationError, match="no entities"):
        registry.get("empty")


def test_import_error_is_wrapped_naming_the_distribution(site: Path) -> None:
    install_fake_distribution(
        site, "broken-dist", "broken_mod", "import not_a_module_anywhere\n", {"broken": "broken_mod:P"}
    )
    with pytest.raises(ProviderLoadError, match=r"'broken' from broken-dist .*failed to import") as info:
        registry.get("broken")
    assert isinstance(info.value.__cause__, ImportError)


def test_two_distributions_with_one_name_are_refused(site: Path) -> None:
    install_fake_distribution(site, "dupe-one", "dupe_one", GOOD.format(cls="P", name="dupe"), {"dupe": "dupe_one:P"})
    install_fake_distribution(site, "dupe-two", "dupe_two", GOOD.format(cls="P", name="dupe"), {"dupe": "dupe_two:P"})
    with pytest.raises(DuplicateProvider, match="dupe-one.*dupe-two|dupe-two.*dupe-one"):
        registry.get("dupe")


def test_register_refuses_duplicates_and_deregister_forgets() -> None:
    registry.register("memory", MemoryProvider)
    with pytest.raises(DuplicateProvider, match="already registered"):
        registry.register("memory", MemoryProvider)
    registry.register("memory", MemoryProvider(), replace=True)
    assert registry.get("memory").name == "memory"
    registry.deregister("memory")
    with pytest.raises(ProviderNotFound, match="'memory'.*uv add connected-objects-memory"):
        registry.get("memory")


def test_register_by_import_string() -> None:
    registry.register("memory", "connected_objects.testing.memory:MemoryProvider")
    assert registry.get("memory").entities
    registry.register("nowhere", "no.such.module:Thing")
    with pytest.raises(ProviderLoadError, match="'nowhere'"):
        registry.get("nowhere")


def test_autoload_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.AUTOLOAD_ENV, "1")
    assert registry.names() == []
    registry.register("memory", MemoryProvider)
    assert registry.names() == ["memory"]
    with pytest.raises(ProviderNotFound):
        registry.get("xero")
    monkeypatch.delenv(registry.AUTOLOAD_ENV)
    registry.set_autoload(False)
    assert registry.names() == ["memory"]
    registry.set_autoload(True)
    assert "xero" in registry.names()
