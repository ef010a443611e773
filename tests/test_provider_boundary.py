"""The first-party providers stand on the plugin kit alone, as a third party's provider would.

Every module of a provider package (``providers/*/connected_objects_*/*.py``) imports the core
only through :mod:`connected_objects.plugin`; its ``testing`` module may also import
:mod:`connected_objects.testing` (the fakes and the conformance suite). Whatever a provider
needs that the kit lacks joins the kit, so the kit is the whole contract: imports inside
functions and under ``TYPE_CHECKING`` count too. (Provider *tests* are application code and may
use the public API as any application does.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PROVIDERS = Path(__file__).resolve().parents[1] / "providers"
KIT = "connected_objects.plugin"
TESTING_KIT = "connected_objects.testing"


def core_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for each import of a ``connected_objects`` module in ``source``, at any
    depth (lazy and ``TYPE_CHECKING`` imports too); ``from connected_objects import plugin`` names
    the module ``connected_objects.plugin``.

    >>> core_imports("import connected_objects.util.http\\ndef f():\\n    from connected_objects import web")
    [(1, 'connected_objects.util.http'), (3, 'connected_objects.web')]
    >>> core_imports("from connected_objects.plugin import Scope\\nimport connected_objects_xero")
    [(1, 'connected_objects.plugin')]
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "connected_objects")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "connected_objects":
                continue
            if node.module == "connected_objects":  # the package's names, or its submodules by name
                found.extend((node.lineno, f"connected_objects.{a.name}") for a in node.names)
            else:
                found.append((node.lineno, node.module))
    return sorted(found)


def allowed(path: Path, module: str) -> bool:
    """The kit itself (not its submodules) anywhere; the testing kit, and its modules, in a ``testing`` module.

    >>> allowed(Path("provider.py"), "connected_objects.plugin"), allowed(Path("provider.py"), "connected_objects.web")
    (True, False)
    >>> allowed(Path("testing.py"), "connected_objects.testing.oauth")
    True
    """
    if module == KIT:
        return True
    return path.stem == "testing" and (module == TESTING_KIT or module.startswith(f"{TESTING_KIT}."))


def offenders(files: list[Path], root: Path = PROVIDERS.parent) -> list[str]:
    """``path:line: module`` for each import in ``files`` past the kit."""
    return [
        f"{path.relative_to(root)}:{line}: {module}"
        for path in files
        for line, module in core_imports(path.read_text(encoding="utf-8"))
        if not allowed(path, module)
    ]


def provider_modules() -> list[Path]:
    return sorted(PROVIDERS.glob("*/connected_objects_*/*.py"))


def test_provider_modules_import_the_core_only_through_the_plugin_kit():
    files = provider_modules()
    assert {p.parent.name for p in files} >= {
        "connected_objects_maestrano",
        "connected_objects_quickbooks",
        "connected_objects_xero",
    }
    assert len(files) >= 20, files
    assert offenders(files) == []


def test_the_check_finds_a_reach_past_the_kit(tmp_path):
    """Each way past the kit is caught: a submodule of the kit, another core module, the package's
    own names, a lazy import, a ``TYPE_CHECKING`` one; the testing kit outside a ``testing`` module."""
    package = tmp_path / "connected_objects_demo"
    package.mkdir()
    provider = package / "provider.py"
    provider.write_text(
        "from typing import TYPE_CHECKING\n"
        "from connected_objects.plugin import Scope\n"
        "from connected_objects.plugin.oauth2 import OAuth2\n"
        "from connected_objects import Limits\n"
        "from connected_objects.testing.oauth import Grant\n"
        "if TYPE_CHECKING:\n"
        "    from connected_objects.store import identity\n"
        "def routes():\n"
        "    from connected_objects.queue import inbox\n"
        "    import connected_objects.web.core\n",
        encoding="utf-8",
    )
    testing = package / "testing.py"
    testing.write_text(
        "from connected_objects.testing.oauth import Grant\nfrom connected_objects.hub import Hub\n", encoding="utf-8"
    )
    found = [line.split(": ", 1)[1] for line in offenders([provider, testing], tmp_path)]
    assert found == [
        "connected_objects.plugin.oauth2",
        "connected_objects.Limits",
        "connected_objects.testing.oauth",
        "connected_objects.store",
        "connected_objects.queue",
        "connected_objects.web.core",
        "connected_objects.hub",
    ]
