"""Provider settings: an argument, else ``CONNECTED_OBJECTS_<PROVIDER>_<NAME>``, else a default.

Every provider is configured the same way (``docs/writing-a-provider.md``,
"Configuration conventions"): keyword arguments, and for the registry's
zero-argument load one environment variable per setting, named after the
provider and the argument. :func:`setting` resolves one of them; an argument
that was given (anything but ``None``) always wins, an empty variable counts as
unset, and ``legacy`` names older variables still read after the new one.

Example::

    >>> from connected_objects.util.settings import setting, variable
    >>> variable("quickbooks", "client_id")
    'CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID'
    >>> env = {"QBO_CLIENT_ID": "old", "CONNECTED_OBJECTS_XERO_CLIENT_ID": "new"}
    >>> setting(None, "quickbooks", "client_id", "", legacy=["QBO_CLIENT_ID"], environ=env)
    'old'
    >>> setting(None, "xero", "client_id", "", environ=env)
    'new'
    >>> setting("given", "xero", "client_id", "", environ=env)
    'given'
    >>> setting(None, "xero", "token_url", "https://identity.xero.com/connect/token", environ=env)
    'https://identity.xero.com/connect/token'

A renamed argument keeps working for a release; giving both names is an error::

    >>> from connected_objects.util.settings import renamed
    >>> renamed("marketplace", None, "environment", "sandbox")
    'sandbox'
    >>> renamed("marketplace", "production", "environment", "sandbox")
    Traceback (most recent call last):
    ...
    TypeError: pass marketplace= only: environment= is its old name (deprecated)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["PREFIX", "renamed", "setting", "variable"]

#: What every provider setting's environment variable starts with.
PREFIX = "CONNECTED_OBJECTS_"

T = TypeVar("T")


def variable(provider: str, name: str) -> str:
    """The environment variable for a provider's setting: ``CONNECTED_OBJECTS_<PROVIDER>_<NAME>``."""
    return f"{PREFIX}{provider}_{name}".upper().replace("-", "_").replace(".", "_")


def setting(
    given: str | None,
    provider: str,
    name: str,
    default: str,
    *,
    legacy: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> str:
    """``given`` if it is not None, else the first non-empty of the setting's variable and the
    ``legacy`` ones, else ``default``."""
    if given is not None:
        return given
    env = os.environ if environ is None else environ
    for name_ in (variable(provider, name), *legacy):
        value = env.get(name_)
        if value:
            return value
    return default


def renamed(name: str, value: T | None, old_name: str, old_value: T | None) -> T | None:
    """The value of an argument that used to be called ``old_name`` (either spelling, not both)."""
    if old_value is None:
        return value
    if value is not None:
        raise TypeError(f"pass {name}= only: {old_name}= is its old name (deprecated)")
    return old_value
