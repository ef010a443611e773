"""Naming the closest known name in an error message: "did you mean 'quickbooks'?".

A start-up error that says only "no provider named 'quickbook'" sends the
reader to the documentation; one that names the closest known name is fixed in
a second. Every check that refuses an unknown name (a provider, an entity, a
mapped attribute, a reference's local type) words its hint with
:func:`did_you_mean`, using :func:`difflib.get_close_matches`.

Example::

    >>> from connected_objects.util.suggest import closest, did_you_mean
    >>> closest("quickbook", ["maestrano", "quickbooks", "xero"])
    'quickbooks'
    >>> did_you_mean("Invoce", ["Customer", "Invoice", "Item"])
    " Did you mean 'Invoice'?"
    >>> did_you_mean("zzz", ["Customer", "Invoice"])
    ''
    >>> closest("hbu", ["Hub", "hub"]), closest("CUSTOMER", ["customer"])
    ('hub', 'customer')
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word`` (as spelled, else case-insensitively), or None when none is close."""
    pool = list(candidates)
    exact = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if exact:
        return exact[0]
    by_folded: dict[str, str] = {}
    for candidate in pool:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest candidate, or ``""``: ready to append to a sentence."""
    found = closest(word, candidates)
    return f" Did you mean {found!r}?" if found is not None else ""
