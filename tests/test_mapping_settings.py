"""How a mapping receives the scope's settings: bound Setting attributes, an optional ``settings`` keyword."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from typing import ClassVar

from connected_objects_quickbooks.mappings import InvoiceMapping as QboInvoice
from connected_objects_xero.mappings import PaymentMapping

from connected_objects import FieldMapping
from connected_objects import Reference
from connected_objects import Setting
from connected_objects.declare.settings import render
from connected_objects.declare.settings import settings_of

ITEM = Setting("default_item", default="1", catalog="Item", field="Id")


class TakesSettings:
    fields: tuple[str, ...] = ("text",)
    references: ClassVar[dict[str, Reference]] = {}
    conflict = "newest"
    on_remote_delete = "ignore"
    tax = Setting("tax_type", default="OUTPUT")

    def to_remote(self, obj: Any, refs: Mapping[str, str | None], *, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"Text": obj.text, "TaxType": self.tax, "All": dict(settings)}

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {}


def test_a_to_remote_taking_settings_gets_them_all_with_the_defaults_filled_in() -> None:
    payload = render(TakesSettings(), SimpleNamespace(text="hi"), {}, {"other": "x"})
    assert payload == {"Text": "hi", "TaxType": "OUTPUT", "All": {"other": "x", "tax_type": "OUTPUT"}}
    assert [s.name for s in settings_of(TakesSettings())] == ["tax_type"]


def test_a_mapping_without_settings_is_called_as_before_and_the_mapping_itself_is_never_changed() -> None:
    plain = FieldMapping({"name": "Name"})
    assert render(plain, SimpleNamespace(name="Acme"), {}, {"x": "y"}) == {"Name": "Acme"}
    mapping = QboInvoice(customer=Reference("customer_id", "customer"), number="number", total="total", item=ITEM)
    row = SimpleNamespace(customer_id=1, number="INV-1", total=Decimal("9.00"))
    bound = render(mapping, row, {"CustomerRef": "58"}, {"default_item": "7"})
    assert bound["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "7"}
    assert mapping.item is ITEM  # the hub's mapping keeps its Setting: each scope gets its own copy
    # unbound (reading natural keys, as adopting does): the default
    assert mapping.to_remote(row, {})["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "1"}


def test_a_required_setting_without_a_value_is_named() -> None:
    from connected_objects.declare.settings import problem

    bank = Setting("bank_account", catalog="Accounts")
    mapping = PaymentMapping(invoice=Reference("invoice_id", "invoice"), account=bank, amount="amount")
    assert settings_of(mapping) == (bank,)
    message = problem(bank, bank.value({}), [{"Code": "090", "Name": "Bank"}], where="xero/production/t-1")
    assert message == "setting bank_account of xero/production/t-1 is not set and has no default: 090 (Bank)"
