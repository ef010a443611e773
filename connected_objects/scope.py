"""Scopes: where a remote record lives.

A :class:`Scope` is the triple ``(provider, marketplace, account)``: which kind of
remote system, which of its namespaces (a Maestrano marketplace key, a QuickBooks
or Xero app environment) and which customer account inside it (a Maestrano group
uid, a QBO realm id, a Xero tenant id). Every identity-map row, change, event and
cursor is filed under one scope, so two marketplaces or two customers never see
each other's records.

Example::

    >>> from connected_objects import Scope
    >>> s = Scope("maestrano", "maestrano-uat", "cld-9p2x")
    >>> s
    Scope(provider='maestrano', marketplace='maestrano-uat', account='cld-9p2x')
    >>> s.provider, str(s)
    ('maestrano', 'maestrano/maestrano-uat/cld-9p2x')

Scopes are immutable values: pass them where they are used, never keep a
"current" scope in module or class state.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scope"]

_LIMITS = {"provider": 64, "marketplace": 64, "account": 128}


@dataclass(frozen=True, slots=True)
class Scope:
    """``(provider, marketplace, account)``: one customer account at one provider namespace."""

    provider: str
    marketplace: str
    account: str

    def __post_init__(self) -> None:
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"Scope.{name} must be a non-empty string, got {value!r}")
            if len(value) > limit:
                raise ValueError(f"Scope.{name} is longer than {limit} characters: {value[:20]!r}...")

    def __str__(self) -> str:
        return f"{self.provider}/{self.marketplace}/{self.account}"
