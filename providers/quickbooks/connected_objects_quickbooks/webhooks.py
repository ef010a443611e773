"""QuickBooks Online webhooks: both payload formats, verified, one inbox event per entity change.

Intuit signs the raw body: ``intuit-signature`` = base64(HMAC-SHA256(verifier
token, body)); a missing or wrong signature gets 401 and nothing is stored.
Two formats arrive, and one delivery may name several companies, so events are
filed per company (``realmId``), never per request:

- legacy: ``{"eventNotifications": [{"realmId": …, "dataChangeEvent": {"entities": [{"name", "id",
  "operation", "lastUpdated"}]}}]}``;
- CloudEvents (mandatory since 2026): a JSON array of ``{"specversion": "1.0", "id", "type":
  "qbo.customer.updated.v1", "intuitaccountid", "intuitentityid", "time", …}``.

Notifications are thin: each stored event names a record for the worker to fetch.

Example::

    >>> import json
    >>> from connected_objects_quickbooks.webhooks import parse
    >>> body = json.dumps([{"specversion": "1.0", "id": "e1", "type": "qbo.customer.updated.v1",
    ...     "intuitaccountid": "9130", "intuitentityid": "58", "time": "2026-11-01T10:00:00Z"}]).encode()
    >>> [(e.account, e.entity, json.loads(e.payload)) for e in parse(body)]
    [('9130', 'Customer', {'id': '58', 'operation': 'updated'})]
"""

from __future__ import annotations

from typing import Any

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import HTTPError
from connected_objects.plugin import InboundEvent
from connected_objects.plugin import digest_key
from connected_objects.plugin import read_json
from connected_objects.plugin import thin_payload

from .entities import ENTITIES

__all__ = ["parse"]


def _event(
    names: dict[str, str], realm: Any, name: Any, entity_id: Any, operation: Any, when: Any, key: str | None
) -> InboundEvent | None:
    entity = names.get(str(name).lower())
    if entity is None:  # an entity not declared (Employee, Estimate, …): acknowledged, not stored
        return None
    if (
        not isinstance(realm, (str, int))
        or isinstance(realm, bool)
        or not 0 < len(str(realm)) <= 128
        or not isinstance(entity_id, (str, int))
        or isinstance(entity_id, bool)
        or not str(entity_id)
    ):
        raise HTTPError(400, "each event needs a company (realmId, up to 128 characters) and an entity id")
    payload = thin_payload(entity_id, operation=str(operation).lower())
    dedupe = key or digest_key(realm, entity, entity_id, operation, when)
    return InboundEvent(dedupe_key=dedupe[:191], account=str(realm), entity=entity, payload=payload)


def parse(body: bytes, catalog: EntityCatalog = ENTITIES) -> list[InboundEvent]:
    """The events a verified delivery carries; :class:`HTTPError` 400 when it is neither format.

    Events name entities by their CDC name (any case); those ``catalog`` does not declare are left out.

    The body is read with the shared bounded reader (:func:`~connected_objects.plugin.read_json`):
    too deep, too big or not strict JSON raises its ``UnreadableBody``, which the web core answers 400.
    """
    document = read_json(body)
    names = {spec.feed_name.lower(): spec.name for spec in catalog}
    found: list[InboundEvent | None] = []
    if isinstance(document, list):  # CloudEvents
        for item in document:
            if not isinstance(item, dict) or item.get("specversion") != "1.0":
                raise HTTPError(400, "a CloudEvents delivery is a list of events with specversion 1.0")
            parts = str(item.get("type", "")).split(".")  # qbo.<entity>.<operation>.v1
            if len(parts) < 3 or parts[0] != "qbo":
                raise HTTPError(400, "an event type is qbo.<entity>.<operation>.v1")
            event_id = item.get("id")
            found.append(
                _event(
                    names,
                    item.get("intuitaccountid"),
                    parts[1],
                    item.get("intuitentityid"),
                    parts[2],
                    item.get("time"),
                    f"ce:{event_id}" if isinstance(event_id, str) and event_id else None,
                )
            )
    elif isinstance(document, dict) and isinstance(document.get("eventNotifications"), list):  # legacy
        for notification in document["eventNotifications"]:
            if not isinstance(notification, dict):
                raise HTTPError(400, "eventNotifications holds objects")
            change = notification.get("dataChangeEvent")
            entities = change.get("entities") if isinstance(change, dict) else None
            if not isinstance(entities, list):
                raise HTTPError(400, "dataChangeEvent.entities must be a list")
            for e in entities:
                if not isinstance(e, dict):
                    raise HTTPError(400, "each entity change is an object")
                found.append(
                    _event(
                        names,
                        notification.get("realmId"),
                        e.get("name"),
                        e.get("id"),
                        e.get("operation"),
                        e.get("lastUpdated"),
                        None,
                    )
                )
    else:
        raise HTTPError(400, "neither a CloudEvents list nor eventNotifications")
    return [e for e in found if e is not None]
