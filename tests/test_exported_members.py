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
