"""The Connec! collections, declared as data: one :class:`~connected_objects.plugin.entities.EntitySpec` each.

:data:`ENTITIES` is what :class:`~connected_objects_maestrano.MaestranoProvider`
syncs, what :class:`~connected_objects_maestrano.connec.ConnecClient` refuses
to write, and what :class:`~connected_objects_maestrano.testing.FakeConnec`
checks. Every collection lives at ``{connec.host}/api/v2/{group_id}/{path}``,
its snake_case plural name (``/api/v2/cld-1234/tax_codes``), with bodies
wrapped in that name (``{"payments": {...}}``); records carry ``id`` (an id
array with ``CONNEC-EXTERNAL-IDS: true``) and ``updated_at``, the version this
library keeps (Connec! has no conditional update: last write wins).

- ``organizations``, ``people``, ``items``, ``invoices`` and ``payments`` are
  written; a delete is an HTTP ``DELETE`` of the record (``delete``);
- ``tax_codes`` and ``accounts`` are read only here: pulled (to pick a tax code
  or an account for a line), never written by this library. Connec! itself
  stores what its applications post to them; declaring them read only is this
  library's choice, as a Maestrano connector declares ``can_write_connec?``
  false for an entity it only reads.

References are top-level id arrays (``organization_id``, ``person_id``), bare
Connec! ids in a :class:`~connected_objects.RemoteRecord`. A payment points at
the invoices it settles inside its lines
(``payment_lines[].linked_transactions[{id, class: "Invoice"}]``); the client
reads the first such invoice back as ``linked_invoice_id``, a reference like
any other.

Sources cited below, read at: maestrano/maestrano-connector-rails c7f0e95,
maestrano/connector-shopify b4d5098, maestrano/maestrano-ruby 9e9037c,
maestrano/mno-api-sandbox 2575dba; ``maestrano.md`` is the project's reference
(``reference/maestrano.md``). Connec!'s own list of mandatory attributes per
collection (maestrano.github.io/connec) is not among them, so ``required`` holds
only what these sources show is always sent.

Example::

    >>> from connected_objects_maestrano.entities import ENTITIES
    >>> sorted(ENTITIES.names)
    ['accounts', 'invoices', 'items', 'organizations', 'payments', 'people', 'tax_codes']
    >>> [spec.name for spec in ENTITIES.read_only]
    ['tax_codes', 'accounts']
    >>> ENTITIES["payments"].references["linked_invoice_id"], ENTITIES["people"].required
    ('invoices', ('last_name',))
"""

from __future__ import annotations

from typing import Final

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec

__all__ = ["ENTITIES", "LINKED_INVOICE", "connec_entity"]

#: The derived field naming the invoice a payment settles (its first ``linked_transactions`` of class Invoice).
LINKED_INVOICE: Final = "linked_invoice_id"


def connec_entity(
    name: str,
    *,
    required: tuple[str, ...] = (),
    references: dict[str, str] | None = None,
    writable: bool = True,
    natural_keys: tuple[str, ...] = (),
) -> EntitySpec:
    """A Connec! collection: its path is its name, its id ``id``, its version ``updated_at``.

    Paths: maestrano-ruby's ``Maestrano::Connec::Client`` scopes every call to
    ``/{group_id}/{collection}`` (reference ``maestrano.md`` §2.8, lines 282-285; the Connec! API
    documentation, maestrano.github.io/connec, "Path prefixing"). Deletes: the Connec! clients of
    Maestrano's SDKs send ``DELETE …/{collection}/{id}`` (maestrano-java ``ConnecClient.delete``,
    ``maestrano.md`` line 337; mno-php, as vendored in maestrano/frontaccounting,
    ``maestrano/lib/mno-php/src/soa/MnoSoaBaseAccount.php``: ``_delete_http_operation = "DELETE"``),
    which :class:`~connected_objects_maestrano.connec.ConnecClient` does; the record is then gone (or
    answered with ``deleted``).
    """
    return EntitySpec(
        name,
        path=name,
        id_field="id",
        version_field="updated_at",
        delete="delete",
        required=required,
        references=references or {},
        writable=writable,
        natural_keys=natural_keys,
    )


#: Every Connec! collection the provider declares, referenced ones first.
ENTITIES: Final = EntityCatalog(
    [
        # Connec! keeps a chart of accounts and tax codes per group: both are collections of Maestrano's own
        # Connec! sandbox (maestrano/mno-api-sandbox, app/controllers/connec/api/v2/resources_controller.rb,
        # ACCEPTED_RESOURCES "Account", "TaxCode") and of the .NET SDK's subscription list ("accounts",
        # "taxCodes": maestrano.md line 347). Read only here: this library pulls them, never writes them.
        connec_entity("tax_codes", writable=False),
        connec_entity("accounts", writable=False),
        # name: the one attribute of Maestrano's own example create (maestrano-ruby README, "Making Requests":
        # client.post('/organizations', {organizations: {name: "DoeCorp Inc."}})) and of the notification
        # example (maestrano.md line 82).
        # Natural keys, how a record already in the group is recognised when it is connected: the attributes
        # Connec!'s own "smart merging" matches on (Maestrano developer wiki, "Smart merging": a create's
        # matching_fields; maestrano-connector-rails, connec_matching_fields per entity): an organization's
        # name, a person's email address, an item's code, an invoice's transaction number. Nested values are
        # reached by dotted paths (email: {address}).
        connec_entity("organizations", required=("name",), natural_keys=("name", "email.address")),
        # last_name: never left out by Maestrano's connectors, which send "Undefined" rather than none
        # (maestrano/connector-shopify, app/models/entities/contact.rb, ContactMapper:
        # map from('last_name'), to('last_name'), default: 'Undefined'); organization_id references the
        # company the person works at (maestrano-connector-rails, spec/integration/id_references_spec.rb,
        # record_references %w(organization_id)).
        connec_entity(
            "people",
            required=("last_name",),
            references={"organization_id": "organizations"},
            natural_keys=("email.address",),
        ),
        # no public source names a mandatory item attribute (Connec!'s documentation marks them per collection,
        # maestrano.github.io/connec, but that list is not among our references): none is declared.
        connec_entity("items", natural_keys=("code",)),
        # the customer organization or person (connector-shopify, app/models/entities/sub_entities/
        # invoice_mapper.rb: record_references %w(person_id lines/item_id); maestrano.md line 502,
        # %w(organization_id lines/item_id)); no mandatory attribute is declared, for the same reason as items.
        connec_entity(
            "invoices",
            references={"organization_id": "organizations", "person_id": "people"},
            natural_keys=("transaction_number",),
        ),
        # payment_lines[{amount, linked_transactions: [{id, class: 'Invoice', applied_amount}]}], person_id
        # (connector-shopify, app/models/entities/sub_entities/payment_mapper.rb: record_references
        # %w(person_id), id_references %w(payment_lines/id payment_lines/linked_transactions/id)); organization_id
        # (maestrano-connector-rails, spec/integration/id_references_spec.rb, a Connec! payment's
        # record_references). No mandatory attribute is declared: none is documented in our references.
        connec_entity(
            "payments",
            references={"organization_id": "organizations", "person_id": "people", LINKED_INVOICE: "invoices"},
        ),
    ],
    # polled hourly, as Maestrano's own connectors sync (maestrano-connector-rails: AllSynchronizationsJob
    # from cron every hour, each organization at rand(3600), template/files/sidekiq_cron.yml.tt), reading
    # `$filter=updated_at gt '…'` (entity.rb:206-247): one request when nothing changed
    poll_every=60 * 60,
)
