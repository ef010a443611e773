"""Mistakes a new user makes fail at start-up, each with the fix in the message.

Before these checks, every one of them was accepted: a provider typo gave a hub that claimed
nothing, an entity or attribute typo failed (or silently pushed ``None``) at the first push,
and forgetting migrations broke the application's own writes with ``no such table``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import ProviderNotFound
from connected_objects import Reference
from connected_objects import SchemaOutOfDate
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.plugin import registry
from connected_objects.store import schema
from connected_objects.store.models import metadata as co_metadata
from connected_objects.testing import MemoryProvider


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "su_organization"
    id: Mapped[int] = mapped_column(primary_key=True)


class Contact(Base):
    __tablename__ = "su_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("su_organization.id"))
    name: Mapped[str] = mapped_column(String(100))
    total: Mapped[int] = mapped_column(default=0)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("su_contact.id"))


_names = itertools.count(1)


def model(provider: str = "memory", *, entity: str = "contacts", mapping: object = None, name: str = "") -> type:
    """A fresh subclass of Contact, connected as asked (each test its own class)."""
    cls = type(name or f"Row{next(_names)}", (Contact,), {})  # single-table inheritance: mapped, same columns
    decorate = connected(
        provider, entity=entity, mapping=mapping or FieldMapping({"name": "Name"}), owner="organization_id"
    )
    return decorate(cls)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.sqlite'}")
    Base.metadata.create_all(engine)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def hub_for(engine: Engine, *models: type, providers: list[object] | None = None) -> Hub:
    return Hub(sessionmaker(engine), models=models, providers=[MemoryProvider()] if providers is None else providers)


# -- providers -------------------------------------------------------------------------------


def test_a_provider_typo_in_connected_fails_install_naming_the_closest_provider(engine: Engine) -> None:
    hub = hub_for(engine, model("memroy", name="Note"))
    with pytest.raises(ProviderNotFound) as caught:
        hub.install()
    assert str(caught.value).startswith("Note is @connected to 'memroy': no provider named 'memroy'.")
    assert "Did you mean 'memory'?" in str(caught.value)


def test_the_issue_s_typo_quickbook_suggests_the_installed_quickbooks(engine: Engine) -> None:
    hub = Hub(sessionmaker(engine), models=[model("quickbook", entity="Customer")])
    with pytest.raises(ProviderNotFound, match=r"Did you mean 'quickbooks'\?"):
        hub.install()


def test_models_imported_before_their_provider_is_registered_still_start(engine: Engine) -> None:
    late = model("late")  # decorated first, as a models module imported early would be
    hub = Hub(sessionmaker(engine), models=[late])
    registry.register("late", lambda: MemoryProvider("late"))  # e.g. a test fixture, or a plugin loaded later
    hub.install()
    hub.uninstall()


def test_an_entity_the_provider_does_not_declare_fails_install(engine: Engine) -> None:
    hub = hub_for(engine, model(entity="contact"))
    with pytest.raises(ConfigurationError) as caught:
        hub.install()
    message = str(caught.value)
    assert "entity='contact', which memory does not declare. Did you mean 'contacts'?" in message
    assert "Its entities: contacts, invoices, notes." in message


# -- mapped attributes and references -----------------------------------------------------------


def test_a_mapped_attribute_typo_fails_at_decoration_naming_the_attribute() -> None:
    with pytest.raises(ConfigurationError) as caught:
        model(mapping=FieldMapping({"nmae": "Name"}), name="Typo")
    assert "reads attribute 'nmae', which Typo does not have. Did you mean 'name'?" in str(caught.value)


def test_a_mapping_missing_a_member_of_the_protocol_fails_at_decoration_naming_it() -> None:
    """No member has a silent default: a mapping without ``conflict`` or ``on_remote_delete`` (or
    ``to_local``) is refused when the model is declared, not when the first record comes back."""

    class Partial:
        fields = ("name",)
        references: ClassVar[dict[str, Reference]] = {}

        def to_remote(self, obj: object, refs: object) -> dict[str, object]:
            return {"Name": obj.name}

    with pytest.raises(ConfigurationError) as caught:
        model(mapping=Partial(), name="Half")
    message = str(caught.value)
    assert "Half: the mapping for 'memory' entity 'contacts' (Partial) does not declare" in message
    assert "conflict, on_remote_delete, to_local." in message


def test_a_push_only_mapping_says_so_when_a_record_comes_back() -> None:
    from connected_objects.declare.mapping import PushOnly

    class Outbound:
        fields = ("name",)
        references: ClassVar[dict[str, Reference]] = {}
        conflict = "newest"
        on_remote_delete = "ignore"

        def to_remote(self, obj: object, refs: object) -> dict[str, object]:
            return {"Name": obj.name}

        def to_local(self, data: object) -> dict[str, object]:
            raise PushOnly(self)

    model(mapping=Outbound(), name="Outgoing")  # declared fine
    with pytest.raises(PushOnly, match="Outbound only pushes"):
        Outbound().to_local({"Name": "x"})


def test_a_reference_attribute_typo_fails_at_decoration() -> None:
    mapping = FieldMapping({"name": "Name"}, references={"Parent": Reference("contactid", "su_contact")})
    with pytest.raises(ConfigurationError, match=r"reads attribute 'contactid'.*Did you mean 'contact_id'\?"):
        model(mapping=mapping)


def test_a_reference_to_a_local_type_nobody_connected_fails_install(engine: Engine) -> None:
    mapping = FieldMapping({"name": "Name"}, references={"Parent": Reference("contact_id", "su_contacts")})
    hub = hub_for(engine, model(mapping=mapping))
    with pytest.raises(ConfigurationError) as caught:
        hub.install()
    message = str(caught.value)
    assert "its reference 'Parent' points at local type 'su_contacts'" in message
    assert "Did you mean 'su_contact'?" in message


def test_a_ready_made_mapping_attribute_typo_fails_at_decoration() -> None:
    qbo = pytest.importorskip("connected_objects_quickbooks.mappings")
    with pytest.raises(ConfigurationError, match=r"reads attribute 'emial', which Row\d+ does not have"):
        model("quickbooks", entity="Customer", mapping=qbo.CustomerMapping(name="name", email="emial"))
    model("quickbooks", entity="Customer", mapping=qbo.CustomerMapping(name="name"))  # the right name passes


def test_the_owner_attribute_typo_names_the_closest_column() -> None:
    with pytest.raises(ConfigurationError, match=r"owner attribute 'organisation_id'.*Did you mean 'organization_id'"):
        connected("memory", entity="contacts", mapping=FieldMapping({"name": "Name"}), owner="organisation_id")(
            type("Other", (Contact,), {})
        )


# -- connections -----------------------------------------------------------------------------------


def test_connect_refuses_an_unknown_provider_and_writes_nothing(engine: Engine) -> None:
    hub = hub_for(engine)
    typo = r"no provider named 'memry'\. Did you mean 'memory'\?"
    with hub.session_factory.begin() as s, pytest.raises(ProviderNotFound, match=typo):
        connections.connect(s, "organization", 1, Scope("memry", "test", "acme"))
    with hub.session_factory() as s:
        assert connections.get(s, Scope("memry", "test", "acme")) is None


def test_connect_knows_the_providers_given_to_the_hub_only(engine: Engine) -> None:
    hub = hub_for(engine)
    assert "memory" not in registry.names()
    with hub.session_factory.begin() as s:
        assert connections.connect(s, "organization", 1, Scope("memory", "test", "acme")).status == "active"


def test_connect_refuses_credentials_without_a_required_key(engine: Engine) -> None:
    class Tokens(MemoryProvider):
        required_credentials = ("access_token", "refresh_token")

    vault = Vault([Vault.generate_key()])
    hub = hub_for(engine, providers=[Tokens()])
    scope = Scope("memory", "test", "acme")
    with hub.session_factory.begin() as s, pytest.raises(ConfigurationError) as caught:
        connections.connect(s, "organization", 1, scope, credentials={"acess_token": "at"}, vault=vault)
    message = str(caught.value)
    assert "memory connections need credentials access_token, refresh_token" in message
    assert "missing access_token, refresh_token" in message and "at" not in message.split("missing")[1][:40]
    with hub.session_factory.begin() as s:
        with pytest.raises(ConfigurationError, match="missing access_token, refresh_token"):
            connections.connect(s, "organization", 1, scope)  # none at all
        connections.connect(
            s, "organization", 1, scope, credentials={"access_token": "a", "refresh_token": "r"}, vault=vault
        )
    with hub.session_factory.begin() as s:  # re-activating keeps the stored credentials: nothing to repeat
        assert connections.connect(s, "organization", 1, scope, settings={"x": 1}).status == "active"
        assert connections.credentials(s, scope, vault) == {"access_token": "a", "refresh_token": "r"}


def test_first_party_providers_declare_their_required_credentials() -> None:
    from connected_objects.plugin.provider import required_credentials

    assert required_credentials(registry.get("quickbooks")) == ("access_token",)
    assert required_credentials(registry.get("xero")) == ("access_token",)
    assert required_credentials(registry.get("maestrano")) == ()


# -- the schema --------------------------------------------------------------------------------------


def test_install_without_migrations_fails_naming_the_command_before_any_write(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    Base.metadata.create_all(engine)  # the application's own tables, but no co_* tables
    hub = hub_for(engine, model())
    with pytest.raises(SchemaOutOfDate) as caught:
        hub.install()
    message = str(caught.value)
    assert "the connected-objects tables are missing" in message
    assert "alembic upgrade heads" in message and "connected-objects schema upgrade" in message
    assert not [t for t in inspect(engine).get_table_names() if t.startswith("co_")]
    schema.upgrade(engine)  # the fix the message names
    hub.install()
    hub.uninstall()
    engine.dispose()


def test_install_on_an_older_schema_names_its_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    schema.upgrade(engine, "co_0004")
    with pytest.raises(SchemaOutOfDate, match=rf"are at revision co_0004; this version needs {schema.head()}"):
        hub_for(engine).install()
    engine.dispose()


def test_tables_made_from_the_metadata_count_as_current_but_a_missing_column_does_not(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    co_metadata.create_all(engine)  # what test fixtures do
    hub_for(engine).check()
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE co_connection DROP COLUMN token_expires_at")
    with pytest.raises(SchemaOutOfDate, match="are missing"):
        hub_for(engine).check()
    engine.dispose()


def test_install_check_false_skips_the_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'none.sqlite'}")
    hub = hub_for(engine, model())
    hub.install(check=False)  # e.g. imported where the database is not reachable yet
    hub.uninstall()
    with pytest.raises(SchemaOutOfDate):
        hub.check()
    engine.dispose()


def test_a_worker_for_an_unknown_provider_is_refused(engine: Engine) -> None:
    hub = hub_for(engine)
    with pytest.raises(ProviderNotFound, match=r"worker\(providers=\['memroy'\]\): .*Did you mean 'memory'\?"):
        hub.worker(providers=["memroy"])
    with pytest.raises(ProviderNotFound, match="Did you mean 'memory'"):
        hub.drain(providers=["memroy"])
    assert hub.worker(providers=["memory"]) is not None


def test_drain_inside_an_event_loop_names_the_async_form(engine: Engine) -> None:
    hub = hub_for(engine, model())

    async def in_a_request_handler() -> None:
        hub.drain()

    with pytest.raises(ConfigurationError, match=r"await hub\.worker\(\)\.run\(until_idle=True\)"):
        asyncio.run(in_a_request_handler())
