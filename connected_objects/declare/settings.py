"""Settings per connection: a mapping field that names a connection setting, checked against a catalog.

Account codes, tax types and default items differ per company: Xero organisation
A sells into account ``200``, organisation B into ``4000``. A mapping field may
hold a :class:`Setting` instead of a constant: the value comes from the
connection's ``settings`` (``co_connection.settings``), else the setting's
``default``. When the setting names a ``catalog`` (a read-only entity of the
provider: Xero ``Accounts``, ``TaxRates``, ``Items``; QuickBooks ``Account``,
``TaxCode``, ``Item``), the value must be the ``field`` of one of that
company's records, pulled and cached per connection; an unknown value is refused
before any request, naming the setting, the connection and the valid choices.

How ``to_remote`` receives the scope's settings (:func:`render`):

- every attribute of the mapping holding a :class:`Setting` is replaced by its
  value on a shallow copy of the mapping (:func:`bind`), so ready-made mappings
  and your own read a plain value (``self.account`` is ``"4000"``);
- a ``to_remote`` that accepts a ``settings`` keyword also gets the scope's
  settings (all of them, defaults filled in). A mapping that does not care
  about settings keeps working unchanged.

Unbound (a mapping used outside a push, e.g. to read natural keys), a
``Setting`` stands for its default (:func:`~connected_objects.plugin.readymade.value_of`).

Example::

    >>> from types import SimpleNamespace
    >>> sales = Setting("sales_account", default="200", catalog="Accounts", field="Code")
    >>> class Lines:
    ...     fields, references, conflict, on_remote_delete = ("total",), {}, "newest", "ignore"
    ...     account = sales
    ...     def to_remote(self, obj, refs):
    ...         return {"AccountCode": self.account, "Amount": obj.total}
    ...     def to_local(self, data):
    ...         return {}
    >>> mapping = Lines()
    >>> [s.name for s in settings_of(mapping)]
    ['sales_account']
    >>> render(mapping, SimpleNamespace(total=5), {}, {"sales_account": "4000"})
    {'AccountCode': '4000', 'Amount': 5}
    >>> render(mapping, SimpleNamespace(total=5), {}, {})  # not set: the default
    {'AccountCode': '200', 'Amount': 5}
    >>> catalog = [{"Code": "200", "Name": "Sales"}, {"Code": "4000", "Name": "Services"}]
    >>> print(problem(sales, "999", catalog, where="xero/production/t-1"))
    setting sales_account of xero/production/t-1 is '999', not one of its Accounts: 200 (Sales), 4000 (Services)
    >>> problem(sales, "4000", catalog, where="xero/production/t-1") is None
    True
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_CHOICES", "Setting", "bind", "choices", "problem", "render", "resolved", "settings_of"]

#: The most choices an error message lists (the rest are counted).
MAX_CHOICES = 30


@dataclass(frozen=True, slots=True)
class Setting:
    """A mapping field's value taken from the connection's settings.

    :param name: the key in the connection's settings (``sales_account``).
    :param default: the value when the connection does not set it (None: required).
    :param catalog: the provider's read-only entity listing the valid values (``Accounts``);
        None: any value is taken.
    :param field: the catalog records' field a value must equal (``Code`` for Xero accounts,
        ``Id`` for QuickBooks ones).
    :param label: the field shown next to each choice (``Name``).
    """

    name: str
    default: str | None = None
    catalog: str | None = None
    field: str = "Code"
    label: str = "Name"

    def value(self, settings: Mapping[str, Any]) -> str | None:
        """This setting's value in ``settings``, else its default.

        >>> Setting("tax", default="OUTPUT").value({}), Setting("tax").value({"tax": 7})
        ('OUTPUT', '7')
        """
        found = settings.get(self.name)
        return str(found) if found not in (None, "") else self.default


def settings_of(mapping: object) -> tuple[Setting, ...]:
    """The :class:`Setting` s a mapping's attributes hold, in attribute order (one per name)."""
    found: dict[str, Setting] = {}
    for value in _attributes(mapping).values():
        if isinstance(value, Setting):
            found.setdefault(value.name, value)
    return tuple(found.values())


def _attributes(mapping: object) -> dict[str, Any]:
    attributes = dict(getattr(mapping, "__dict__", {}))
    for name in getattr(type(mapping), "__slots__", ()):
        if hasattr(mapping, name):
            attributes.setdefault(name, getattr(mapping, name))
    for name, value in _class_settings(type(mapping)).items():  # a mapping class written by hand
        attributes.setdefault(name, value)
    return attributes


_CLASS_SETTINGS: dict[type, dict[str, Setting]] = {}
_CLASS_ACCEPTS: dict[type, bool] = {}


def _class_settings(klass: type) -> dict[str, Setting]:
    found = _CLASS_SETTINGS.get(klass)
    if found is None:
        found = {}
        for base in klass.__mro__:
            for name, value in vars(base).items():
                if isinstance(value, Setting):
                    found.setdefault(name, value)
        _CLASS_SETTINGS[klass] = found
    return found


def resolved(mapping: object, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The scope's settings as ``to_remote`` sees them: the connection's, plus each declared default."""
    out = dict(settings)
    for setting in settings_of(mapping):
        value = setting.value(settings)
        if value is not None:
            out[setting.name] = value
    return out


def bind(mapping: Any, settings: Mapping[str, Any]) -> Any:
    """``mapping`` itself when it holds no :class:`Setting`; else a shallow copy whose settings are values."""
    found = {name: value for name, value in _attributes(mapping).items() if isinstance(value, Setting)}
    if not found:
        return mapping
    bound = copy.copy(mapping)
    for name, setting in found.items():
        object.__setattr__(bound, name, setting.value(settings))
    return bound


def _takes_settings(mapping: Any) -> bool:
    """Whether ``mapping.to_remote`` accepts a ``settings`` keyword (checked once per class)."""
    if "to_remote" in getattr(mapping, "__dict__", {}):
        return _accepts(mapping.to_remote)
    return _class_accepts(type(mapping))


def _class_accepts(klass: type) -> bool:
    accepts = _CLASS_ACCEPTS.get(klass)
    if accepts is None:
        accepts = _CLASS_ACCEPTS[klass] = _accepts(getattr(klass, "to_remote", None))
    return accepts


def _accepts(method: Any) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "settings" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def render(mapping: Any, obj: Any, refs: Mapping[str, str | None], settings: Mapping[str, Any]) -> dict[str, Any]:
    """``to_remote`` of ``mapping`` for ``obj`` with the scope's ``settings`` (see the module's docstring)."""
    bound = bind(mapping, settings)
    if _takes_settings(bound):
        payload: dict[str, Any] = bound.to_remote(obj, refs, settings=resolved(mapping, settings))
        return payload
    result: dict[str, Any] = bound.to_remote(obj, refs)
    return result


def choices(setting: Setting, catalog: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(value, label)`` of each record of ``catalog`` for ``setting``, in order, without duplicates."""
    out: dict[str, str] = {}
    for record in catalog:
        value = record.get(setting.field)
        if value not in (None, ""):
            out.setdefault(str(value), str(record.get(setting.label) or ""))
    return list(out.items())


def problem(
    setting: Setting, value: str | None, catalog: Sequence[Mapping[str, Any]] | None, *, where: str
) -> str | None:
    """Why ``value`` is not a valid value of ``setting`` for the connection ``where``; None when it is
    (or when there is no catalog to check it against)."""
    if value is None:
        return f"setting {setting.name} of {where} is not set and has no default: {_listed(setting, catalog)}"
    if setting.catalog is None or catalog is None:
        return None
    valid = choices(setting, catalog)
    if any(value == choice for choice, _ in valid):
        return None
    listed = _listed(setting, catalog)
    return f"setting {setting.name} of {where} is {value!r}, not one of its {setting.catalog}: {listed}"


def _listed(setting: Setting, catalog: Sequence[Mapping[str, Any]] | None) -> str:
    if setting.catalog is None or catalog is None:
        return "set it with connected-objects connections settings"
    valid = choices(setting, catalog)
    if not valid:
        return f"its {setting.catalog} list is empty"
    shown = [f"{value} ({label})" if label else value for value, label in valid[:MAX_CHOICES]]
    more = f" and {len(valid) - MAX_CHOICES} more" if len(valid) > MAX_CHOICES else ""
    return ", ".join(shown) + more
