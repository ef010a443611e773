"""The public surface is exactly what ``__all__`` says, sorted."""

from __future__ import annotations

import inspect

import connected_objects

EXPORTED_MODULES = {"capture", "connections", "identity", "inbox", "journal", "oauth", "outbox", "registry", "schema"}


def test_all_is_sorted_and_complete() -> None:
    exported = connected_objects.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(connected_objects).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(exported) - EXPORTED_MODULES - {"__version__"} == public
    for name in EXPORTED_MODULES:
        assert inspect.ismodule(getattr(connected_objects, name))


def test_everything_exported_is_documented() -> None:
    for name in connected_objects.__all__:
        obj = getattr(connected_objects, name)
        if inspect.isclass(obj) or inspect.ismodule(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def _isort_style(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _modules() -> list[str]:
    import pkgutil

    names = []
    for info in pkgutil.walk_packages(connected_objects.__path__, "connected_objects."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


def test_every_module_says_what_it_exports() -> None:
    """Each module has a sorted ``__all__`` naming things it has, and every public class or function it
    defines is in it (or starts with ``_``)."""
    import importlib

    problems = []
    for name in _modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            problems.append(f"{name}: no __all__")
            continue
        if list(exported) != sorted(exported, key=_isort_style):
            problems.append(f"{name}: __all__ is not sorted (constants, classes, functions: as ruff's RUF022)")
        problems.extend(f"{name}: __all__ names {n!r}, which it lacks" for n in exported if not hasattr(module, n))
        for attr, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == name
            if (
                not attr.startswith("_")
                and (inspect.isclass(value) or inspect.isfunction(value))
                and defined_here
                and attr not in exported
            ):
                problems.append(f"{name}: public {attr} is not in __all__")
    assert problems == []
