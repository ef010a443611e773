"""Matching by natural keys: which local row is which remote record, decided with no I/O.

When a company that already keeps books is connected, its records and the
application's rows overlap: the same customer exists on both sides, with no
link between them. :func:`match` pairs them by the entity's *natural keys*
(QuickBooks ``DisplayName`` then ``PrimaryEmailAddr.Address``, Xero ``Name``
then ``EmailAddress``, an invoice's number...), key by key, in order:

- one local row and one remote record with the same value: a **match**;
- several candidates on either side: **ambiguous**, never linked
  automatically (an operator links one by hand);
- a row or record with no counterpart under any key: **local only** (to
  export) or **remote only** (to import, where the mapping receives).

Values are compared the way the providers compare names (:func:`normalise`):
case, surrounding and repeated whitespace do not count.

Example::

    >>> keys = ("DisplayName",)
    >>> local = {"1": {"DisplayName": "Acme  Ltd"}, "2": {"DisplayName": "Globex"}, "3": {"DisplayName": "Initech"}}
    >>> remote = {"a": {"DisplayName": "ACME Ltd"}, "b": {"DisplayName": "Initech"}, "c": {"DisplayName": "initech "},
    ...           "d": {"DisplayName": "Umbrella"}}
    >>> found = match({i: key_values(p, keys) for i, p in local.items()},
    ...               {i: key_values(p, keys) for i, p in remote.items()}, keys)
    >>> found.matched, found.local_only, found.remote_only
    ({'1': 'a'}, ['2'], ['d'])
    >>> [(a.key, a.value, a.local_ids, a.foreign_ids) for a in found.ambiguous]
    [('DisplayName', 'initech', ('3',), ('b', 'c'))]
"""

from __future__ import annotations

import re
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["Ambiguity", "Matching", "key_values", "match", "normalise", "value_at"]

_SPACES = re.compile(r"\s+")


def normalise(value: Any) -> str | None:
    """A natural key's value as providers compare it; None when there is nothing to compare.

    Surrounding and repeated whitespace does not count: QuickBooks refuses a name that differs
    from a taken one only by extra spaces (6240, "Duplicate Name Exists"; users' reports of it,
    e.g. Teachworks' "QuickBooks Online Error Messages" support page), and Xero trims contact
    names. Case does not count either: the conservative reading, which can only turn a would-be
    match into an ambiguity to review, never link two different records.

    >>> normalise("  Acme   Ltd "), normalise("ACME LTD"), normalise(""), normalise(None), normalise(1042)
    ('acme ltd', 'acme ltd', None, None, '1042')
    """
    if value is None or isinstance(value, (dict, list)):
        return None
    text = _SPACES.sub(" ", str(value)).strip().casefold()
    return text or None


def value_at(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a payload (``PrimaryEmailAddr.Address``), or None.

    >>> value_at({"PrimaryEmailAddr": {"Address": "a@b.c"}}, "PrimaryEmailAddr.Address")
    'a@b.c'
    >>> value_at({"PrimaryEmailAddr": None}, "PrimaryEmailAddr.Address") is None
    True
    """
    here: Any = payload
    for part in path.split("."):
        if not isinstance(here, Mapping):
            return None
        here = here.get(part)
    return here


def key_values(payload: Mapping[str, Any], keys: Sequence[str]) -> dict[str, str | None]:
    """The normalised value of each natural key (a dotted path) in ``payload``: what :func:`match` compares.

    >>> key_values({"DisplayName": " Acme ", "PrimaryEmailAddr": {"Address": "A@B.C"}},
    ...            ("DisplayName", "PrimaryEmailAddr.Address"))
    {'DisplayName': 'acme', 'PrimaryEmailAddr.Address': 'a@b.c'}
    """
    return {key: normalise(value_at(payload, key)) for key in keys}


@dataclass(frozen=True)
class Ambiguity:
    """Rows and records sharing one natural key value: none of them is linked automatically."""

    key: str
    value: str
    local_ids: tuple[str, ...]
    foreign_ids: tuple[str, ...]


@dataclass
class Matching:
    """What :func:`match` found."""

    #: local id → foreign id.
    matched: dict[str, str] = field(default_factory=dict)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    local_only: list[str] = field(default_factory=list)
    remote_only: list[str] = field(default_factory=list)

    @property
    def ambiguous_local(self) -> set[str]:
        return {i for a in self.ambiguous for i in a.local_ids}

    @property
    def ambiguous_remote(self) -> set[str]:
        return {i for a in self.ambiguous for i in a.foreign_ids}


def match(
    local: Mapping[str, Mapping[str, str | None]],
    remote: Mapping[str, Mapping[str, str | None]],
    keys: Sequence[str],
    *,
    taken: Mapping[str, Collection[str]] | None = None,
) -> Matching:
    """Pair ``local`` rows (local id → their :func:`key_values`) with ``remote`` records (foreign id →
    theirs) by ``keys``, in order.

    A row or record taken by a match or an ambiguity under one key is out of the running for the
    next ones; one that has no value under a key is tried under the next. ``taken`` gives, per key,
    the (normalised) values of records already linked to other rows: a row left with one of those is
    ambiguous with no candidate, since creating it would collide with a record that is someone else's.

    >>> found = match({"7": {"Name": "acme"}}, {}, ("Name",), taken={"Name": {"acme"}})
    >>> [(a.local_ids, a.foreign_ids) for a in found.ambiguous], found.local_only
    ([(('7',), ())], [])
    """
    out = Matching()
    taken = taken or {}
    local_left = dict(local)
    remote_left = dict(remote)
    for key in keys:
        local_by: dict[str, list[str]] = {}
        for local_id, values in local_left.items():
            value = values.get(key)
            if value is not None:
                local_by.setdefault(value, []).append(local_id)
        remote_by: dict[str, list[str]] = {}
        for foreign_id, values in remote_left.items():
            value = values.get(key)
            if value is not None:
                remote_by.setdefault(value, []).append(foreign_id)
        for value in sorted(local_by.keys() & remote_by.keys()):
            locals_, remotes = local_by[value], remote_by[value]
            if len(locals_) == 1 and len(remotes) == 1:
                out.matched[locals_[0]] = remotes[0]
            else:
                out.ambiguous.append(Ambiguity(key, value, tuple(sorted(locals_)), tuple(sorted(remotes))))
            for local_id in locals_:
                del local_left[local_id]
            for foreign_id in remotes:
                del remote_left[foreign_id]
        for value in sorted(local_by.keys() - remote_by.keys()):
            if value in taken.get(key, ()):
                out.ambiguous.append(Ambiguity(key, value, tuple(sorted(local_by[value])), ()))
                for local_id in local_by[value]:
                    del local_left[local_id]
    out.local_only = sorted(local_left)
    out.remote_only = sorted(remote_left)
    return out
