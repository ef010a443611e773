"""Finding, loading and validating provider plugins.

Providers are discovered through the entry-point group
``connected_objects.providers``; first-party providers use exactly the same
path as third-party ones. Discovery is lazy: :func:`names` reads entry-point
*names* only and imports nothing; :func:`get` imports, instantiates and
validates one provider on first use and caches it.

Example::

    >>> from connected_objects.plugin import registry
    >>> from connected_objects.testing import MemoryProvider
    >>> registry.register("memory", MemoryProvider)
    >>> registry.get("memory").name
    'memory'
    >>> registry.deregister("memory")

Set ``CONNECTED_OBJECTS_DISABLE_PROVIDER_AUTOLOAD=1`` (or call
:func:`set_autoload` ``(False)``) to ignore installed entry points and use only
what :func:`register` was given, as pytest does with its own plugins.

Errors name the plugin and the fix: :class:`ProviderNotFound`,
:class:`ProviderLoadError` (the import failed; chained to the cause),
:class:`ProviderValidationError` (the object breaks the contract) and
:class:`DuplicateProvider` (two distributions or registrations claim one name).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint
from importlib.metadata import entry_points
from typing import Any
from typing import TypeAlias

from ..exceptions import DuplicateProvider
from ..exceptions import ProviderLoadError
from ..exceptions import ProviderNotFound
from ..exceptions import ProviderValidationError
from .provider import API_VERSION
from .provider import Provider

__all__ = [
    "AUTOLOAD_ENV",
    "GROUP",
    "deregister",
    "get",
    "names",
    "register",
    "reset",
    "set_autoload",
]

#: The entry-point group providers publish themselves under.
GROUP = "connected_objects.providers"
#: Set to a true value to ignore installed entry points.
AUTOLOAD_ENV = "CONNECTED_OBJECTS_DISABLE_PROVIDER_AUTOLOAD"

#: What :func:`register` accepts: an instance, a class or zero-argument factory, or "module:attr".
ProviderSource: TypeAlias = Provider | Callable[[], Any] | str

_lock = threading.RLock()
_registered: dict[str, ProviderSource] = {}
_loaded: dict[str, Provider] = {}
_autoload: bool | None = None


def set_autoload(enabled: bool | None) -> None:
    """Turn entry-point discovery on or off; ``None`` goes back to the environment variable."""
    global _autoload
    with _lock:
        _autoload = enabled
        _loaded.clear()


def _autoload_enabled() -> bool:
    if _autoload is not None:
        return _autoload
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def _entry_points() -> dict[str, EntryPoint]:
    if not _autoload_enabled():
        return {}
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise DuplicateProvider(
                ep.name,
                f"two installed distributions provide {ep.name!r}: {_origin(other)} and {_origin(ep)}; "
                "uninstall one of them",
            )
        found[ep.name] = ep
    return found


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or "an unknown distribution"
    return f"{name} ({ep.value})"


def names() -> list[str]:
    """Names of every available provider, registered or installed, sorted; imports nothing."""
    with _lock:
        return sorted(set(_registered) | set(_entry_points()))


def register(name: str, source: ProviderSource, *, replace: bool = False) -> None:
    """Make a provider available under ``name`` in this process.

    :param source: a provider instance, a class or zero-argument factory, or a
        ``"module:attribute"`` string, loaded and validated on first :func:`get`.
    :param replace: allow replacing an earlier registration of the same name.
    :raises DuplicateProvider: the name is taken and ``replace`` is false.
    """
    with _lock:
        if not replace and name in _registered:
            raise DuplicateProvider(
                name, f"provider {name!r} is already registered; deregister() it first or pass replace=True"
            )
        _registered[name] = source
        _loaded.pop(name, None)


def deregister(name: str) -> None:
    """Forget an in-process registration (installed entry points stay available)."""
    with _lock:
        _registered.pop(name, None)
        _loaded.pop(name, None)


def reset() -> None:
    """Forget every registration and cached provider (for tests)."""
    with _lock:
        _registered.clear()
        _loaded.clear()


def get(name: str) -> Provider:
    """The provider named ``name``, loaded and validated once, then cached.

    In-process registrations take precedence over installed entry points.
    """
    with _lock:
        cached = _loaded.get(name)
        if cached is not None:
            return cached
        if name in _registered:
            obj = _instantiate(name, _resolve(name, _registered[name]))
        else:
            eps = _entry_points()
            ep = eps.get(name)
            if ep is None:
                raise ProviderNotFound(name, tuple(sorted(set(_registered) | set(eps))))
            try:
                loaded = ep.load()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                raise ProviderLoadError(
                    name,
                    f"provider {name!r} from {_origin(ep)} failed to import: {type(exc).__name__}: {exc}. "
                    "Fix or reinstall that distribution.",
                ) from exc
            obj = _instantiate(name, loaded)
        provider = _validate(name, obj)
        _loaded[name] = provider
        return provider


def _resolve(name: str, source: ProviderSource) -> Any:
    if not isinstance(source, str):
        return source
    module, _, attr = source.partition(":")
    try:
        target: Any = import_module(module)
        for part in filter(None, attr.split(".")):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ProviderLoadError(name, f"provider {name!r} registered as {source!r} could not be loaded: {exc}") from exc
    return target


def _instantiate(name: str, obj: Any) -> Any:
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Provider)):
        try:
            return obj()
        except Exception as exc:
            raise ProviderLoadError(
                name, f"provider {name!r}: calling {getattr(obj, '__qualname__', obj)!r} raised {exc!r}"
            ) from exc
    return obj


def _validate(name: str, obj: Any) -> Provider:
    def fail(problem: str) -> ProviderValidationError:
        return ProviderValidationError(
            name,
            f"provider {name!r} ({type(obj).__qualname__}) {problem} (see connected_objects.plugin.provider.Provider)",
        )

    missing = [m for m in ("name", "api_version", "entities", "limits", "client") if not hasattr(obj, m)]
    if missing:
        raise fail(f"lacks {', '.join(missing)}")
    if not isinstance(obj, Provider):
        raise fail("does not satisfy the Provider protocol")
    if obj.name != name:
        raise fail(f"declares name={obj.name!r}; it must equal its entry-point name {name!r}")
    if obj.api_version != API_VERSION:
        raise fail(f"declares api_version={obj.api_version!r}; this connected-objects implements {API_VERSION}")
    if not obj.entities or isinstance(obj.entities, str):
        raise fail("declares no entities; list the remote collections it syncs")
    if not callable(obj.limits) or not callable(obj.client):
        raise fail("has non-callable limits or client")
    return obj
