"""Declaration: which models sync where (:mod:`.spec`), and how a row becomes a payload (:mod:`.mapping`).

The two halves of what an application writes once per model: the ``@connected``
decorator with the :class:`SyncSpec` it records, and the :class:`Mapping` it is
given (:class:`FieldMapping` for plain renames, :class:`Reference` for the rows a
payload points at).

Example::

    >>> from connected_objects.declare import FieldMapping, SyncSpec, connected
    >>> SyncSpec.__name__, FieldMapping({"name": "DisplayName"}).fields
    ('SyncSpec', frozenset({'name'}))
"""

from __future__ import annotations

from .mapping import FieldMapping
from .mapping import Mapping
from .mapping import Reference
from .spec import SyncSpec
from .spec import connected
from .spec import specs_of

__all__ = ["FieldMapping", "Mapping", "Reference", "SyncSpec", "connected", "specs_of"]
