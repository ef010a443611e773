"""The ``testing`` extra: what the sandboxes need beyond the core, and a clear error without it.

The sandboxes (:mod:`~connected_objects.testing.sandbox`, :mod:`~connected_objects.testing.oauth`,
:mod:`~connected_objects.testing.echo`) are Starlette apps, served over loopback HTTP by uvicorn.
Neither is a dependency of the core: ``pip install 'connected-objects[testing]'`` brings them.
"""

from __future__ import annotations

__all__ = ["INSTALL", "missing"]

INSTALL = "pip install 'connected-objects[testing]' (or: uv add 'connected-objects[testing]')"


def missing(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise in place of ``exc``: which module is missing, and which extra brings it.

    >>> error = missing(ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn"))
    >>> print(error)  # doctest: +NORMALIZE_WHITESPACE
    connected_objects.testing needs uvicorn, which the testing extra installs:
    pip install 'connected-objects[testing]' (or: uv add 'connected-objects[testing]')
    """
    return ModuleNotFoundError(
        f"connected_objects.testing needs {exc.name or 'a module'}, which the testing extra installs: {INSTALL}",
        name=exc.name,
    )
