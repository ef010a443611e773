"""Xero webhooks: one inbox event per event of an entity the application syncs, filed under its tenant.

Xero signs each delivery with ``x-xero-signature`` = base64 HMAC-SHA256 of the
raw body under the app's webhook key; a good signature gets exactly ``200`` with
an empty body (also for the intent-to-receive probes, which carry no events), a
bad or missing one ``401`` and nothing is stored. Events are thin (a tenant, a
category, a resource id): each event of an entity the application syncs is
stored in the inbox under its tenant, and the worker fetches the record.

Example::

    >>> import json
    >>> from connected_objects_xero.webhooks import parse_events
    >>> body = {"events": [{"tenantId": "t-1", "resourceId": "c-1", "eventCategory": "CONTACT",
    ...     "eventType": "UPDATE", "eventDateUtc": "2026-11-01T10:00:00"}]}
    >>> [(e.account, e.entity, json.loads(e.payload)["id"]) for e in parse_events(body, lambda entity: True)]
    [('t-1', 'Contacts', 'c-1')]
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from connected_objects.plugin import HTTPError
from connected_objects.plugin import InboundEvent
from connected_objects.plugin import digest_key
from connected_objects.plugin import thin_payload

from .entities import ENTITIES

__all__ = ["CATEGORIES", "parse_events"]

#: Webhook event categories (each entity's declared ``feed``), and their entity.
CATEGORIES: Mapping[str, str] = {spec.feed: spec.name for spec in ENTITIES if spec.feed}


def parse_events(
    body: Mapping[str, Any], wanted: Callable[[str], bool], categories: Mapping[str, str] = CATEGORIES
) -> list[InboundEvent]:
    """One inbox event per event of a synced entity (its category in ``categories``), filed under its tenant.

    The dedupe key is what the event says (tenant, category, type, resource,
    time): Xero gives events no id, and a redelivery repeats them byte for byte.
    """
    events = body.get("events")
    if not isinstance(events, list):
        raise HTTPError(400, "'events' must be a list")
    parsed = []
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise HTTPError(400, f"events[{n}] must be an object")
        fields = {k: event.get(k) for k in ("tenantId", "resourceId", "eventCategory", "eventType")}
        if not all(isinstance(v, str) and v and len(v) <= 128 for v in fields.values()):
            raise HTTPError(400, f"events[{n}] needs string tenantId, resourceId, eventCategory and eventType")
        entity = categories.get(str(fields["eventCategory"]))
        if entity is None or not wanted(entity):
            continue  # SUBSCRIPTION, CREDITNOTE, or an entity this application does not sync
        key = digest_key(*fields.values(), event.get("eventDateUtc"))
        payload = thin_payload(fields["resourceId"], event=event)
        parsed.append(InboundEvent(key, str(fields["tenantId"]), entity, payload))
    return parsed
