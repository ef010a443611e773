"""The main job, played end to end: ``connected-objects demo`` (distribution ``connected-objects-demo``).

An invoicing application on an embedded SQLite file, with our migrations
applied, talks over real loopback HTTP to the sandboxes that ship with the
providers: two Maestrano marketplaces (a SAML identity provider each, Connec!,
the billing API) in front of one application. Every step checks what it
claims against the database and the sandboxes, and the run fails (non-zero
exit) at the first step that did not do what it says:

1. two marketplaces configured, metadata served without a secret;
2. a user signs in through SAML SSO in each: organizations and users made
   through the identity map, each group connected, its first Connec! import
   queued;
3. a worker runs the first import;
4. invoices created locally are pushed, each to its own marketplace's
   Connec! with that marketplace's credentials; a direct customer connected
   to QuickBooks Online and Xero gets its customer pushed first, then the
   invoice that points at it, in each (the expired QuickBooks OAuth token
   refreshed once on the way);
   the invoice is paid in QuickBooks: a webhook marks it paid locally and the
   payment reaches Xero, where nothing is left due;
   a company that already keeps its books in QuickBooks is connected: adopting
   (a dry run, then applied) links the customers and invoices it shares with
   the application by name and number, one pair no one could tell apart is
   linked by hand, and the export pushes the rest, nothing created twice;
5. a Connec! webhook creates an invoice locally;
6. a pull backfills a few hundred records, with a progress bar;
7. Connec! goes down for two requests; the push retries and recovers;
8. the monthly billing job bills the Maestrano organizations through the
   billing API and the direct customer locally, once, even when run twice;
9. a group is deleted through the account webhook: its connection revoked,
   its links tombstoned, not billed again.

It ends with the connected objects per scope, compared with what the
sandboxes hold, and what was pushed, received and retried. Nothing keeps
running afterwards. The database stays, for ``connected-objects status``.

Run it from code as well::

    from pathlib import Path
    from connected_objects_demo import run
    summary = run(Path("demo.sqlite"))
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from connected_objects_quickbooks import mappings as qbo_maps
from connected_objects_xero import mappings as xero_maps
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import signals
from connected_objects.cli.tables import Listing
from connected_objects.declare import connected
from connected_objects.declare.mapping import FieldMapping
from connected_objects.declare.mapping import Reference
from connected_objects.exceptions import ConnectedObjectsError
from connected_objects.hub import Hub
from connected_objects.ops.status import status
from connected_objects.receive.pull import PullStats
from connected_objects.receive.pull import pull
from connected_objects.scope import Scope
from connected_objects.store import identity
from connected_objects.store import schema
from connected_objects.store.models import connection as connection_table
from connected_objects.util.retry import RetryPolicy
from connected_objects.web import ASGIAdapter

__all__ = ["DemoFailure", "Summary", "run"]

MARKETPLACES = {
    "maestrano": ("Acme", "cld-acme", "ada@acme.example"),
    "partner": ("Globex", "cld-globex", "hank@globex.example"),
}
PLAN = Decimal("49.00")
QBO_VERIFIER = "demo-intuit-verifier"
#: The realm of the company that already keeps books when it is connected.
ONBOARDED = "4620816365"


class DemoFailure(ConnectedObjectsError):
    """A step of the demo did not do what it says."""


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "demo_organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "demo_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(100))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("demo_organization.id"))
    role: Mapped[str | None] = mapped_column(String(40))


@connected(
    "quickbooks",
    entity="Customer",
    mapping=FieldMapping({"name": "DisplayName"}),
    owner="organization_id",
    owner_type="demo_organization",
)
@connected(
    "xero",
    entity="Contacts",
    mapping=FieldMapping({"name": "Name"}),
    owner="organization_id",
    owner_type="demo_organization",
)
class Customer(Base):
    __tablename__ = "demo_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("demo_organization.id"))
    name: Mapped[str] = mapped_column(String(100))


CUSTOMER = Reference("customer_id", "demo_customer")
INVOICE = Reference("invoice_id", "demo_invoice")


@connected(
    "maestrano",
    entity="invoices",
    mapping=FieldMapping({"number": "title", "amount": "amount"}),
    owner="organization_id",
    owner_type="demo_organization",
)
# the ready-made mappings: one line billed as item 1 in QuickBooks (its Balance read back), an authorised
# sales invoice on account 200 in Xero (its AmountDue read back)
@connected(
    "quickbooks",
    entity="Invoice",
    mapping=qbo_maps.InvoiceMapping(customer=CUSTOMER, number="number", total="total", item="1", balance="balance"),
    owner="organization_id",
    owner_type="demo_organization",
)
@connected(
    "xero",
    entity="Invoices",
    mapping=xero_maps.InvoiceMapping(
        contact=CUSTOMER, number="number", total="total", status="status", account="200", amount_due="due"
    ),
    owner="organization_id",
    owner_type="demo_organization",
)
class Invoice(Base):
    __tablename__ = "demo_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("demo_organization.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("demo_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(default=0)  # in cents, as Connec! takes it
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # QuickBooks and Xero take amounts
    status: Mapped[str] = mapped_column(String(20), default="AUTHORISED")  # Xero takes payments on these only
    balance: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # QuickBooks' Balance: 0 once paid
    due: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # Xero's AmountDue


# A payment recorded in QuickBooks comes in, and goes out to Xero against the same invoice.
@connected(
    "quickbooks",
    entity="Payment",
    mapping=qbo_maps.PaymentMapping(customer=CUSTOMER, invoice=INVOICE, amount="amount", date="paid_on"),
    owner="organization_id",
    owner_type="demo_organization",
)
@connected(
    "xero",
    entity="Payments",
    mapping=xero_maps.PaymentMapping(invoice=INVOICE, account="090", amount="amount", date="paid_on"),
    owner="organization_id",
    owner_type="demo_organization",
)
class Payment(Base):
    __tablename__ = "demo_payment"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("demo_organization.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("demo_customer.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("demo_invoice.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_on: Mapped[dt.date | None] = mapped_column(Date)


class LocalBill(Base):
    """How the application bills its direct customers itself."""

    __tablename__ = "demo_local_bill"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("demo_organization.id"))
    period: Mapped[str] = mapped_column(String(7))
    amount_cents: Mapped[int]


@dataclass
class Summary:
    """What the demo did, as counted by the library's signals and the sandboxes."""

    pushed: int = 0
    retried: int = 0
    dead: int = 0
    received: int = 0
    billed_remote: int = 0
    billed_local: int = 0
    scopes: list[tuple[str, str, int, int]] = field(default_factory=list)


def check(condition: bool, failure: str) -> None:
    """Stop the demo loudly when a step did not do what it says."""
    if not condition:
        raise DemoFailure(failure)


@contextlib.contextmanager
def _step(console: Console, number: int, title: str) -> Iterator[None]:
    console.print(f"\n[bold cyan]{number}.[/bold cyan] [bold]{title}[/bold]")
    yield
    console.print("   [green]✓[/green] done")


def _say(console: Console, text: str) -> None:
    console.print(f"   {text}")


def run(path: Path, console: Console | None = None) -> Summary:
    """Play the whole story on the SQLite file ``path`` (replaced if it exists); raise :class:`DemoFailure`
    at the first step that does not check out."""
    from connected_objects_maestrano import MaestranoProvider
    from connected_objects_maestrano import Marketplaces
    from connected_objects_maestrano.sso import RowSignIn
    from connected_objects_maestrano.testing import FakeBilling
    from connected_objects_maestrano.testing import FakeConnec
    from connected_objects_maestrano.testing import FakeIdP
    from connected_objects_maestrano.testing import marketplace_config
    from connected_objects_maestrano.testing import serve_wsgi
    from connected_objects_quickbooks import QuickBooksProvider
    from connected_objects_quickbooks.testing import FakeQuickBooks
    from connected_objects_xero import XeroProvider
    from connected_objects_xero.testing import FakeXero

    from connected_objects.testing.oauth import FakeAuthorizationServer
    from connected_objects.testing.sandbox import serve
    from connected_objects.util.secrets import Vault

    console = console or Console()
    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    summary = Summary()
    counters = _count_signals(summary)
    try:
        schema.upgrade(engine)
        Base.metadata.create_all(engine)
        _say(console, f"database [bold]{path}[/bold], connected-objects schema at {schema.head()}")
        idps = {key: FakeIdP(f"https://idp.{key}.example") for key in MARKETPLACES}
        credentials = {f"app-{key}": f"secret-key-of-{key}" for key in MARKETPLACES}
        connec, billing = FakeConnec(credentials), FakeBilling(credentials)
        qbo, intuit = FakeQuickBooks(), FakeAuthorizationServer("demo-client", "demo-client-key")
        xero = FakeXero()
        holder: dict[str, Marketplaces] = {}
        with contextlib.ExitStack() as running:  # every sandbox stops when the story ends, whatever happens
            qbo_url = running.enter_context(serve(qbo.app))
            intuit_url = running.enter_context(serve(intuit.app))
            quickbooks = QuickBooksProvider(
                base_url=qbo_url,
                client_id=intuit.client_id,
                client_secret=intuit.client_secret,
                token_url=f"{intuit_url}/token",
                webhook_verifier=QBO_VERIFIER,
            )
            xero_url = running.enter_context(serve(xero.app))
            xero_provider = XeroProvider(base_url=xero_url, webhook_key="demo-xero-webhook-key")
            sign_in = RowSignIn(
                Organization,
                User,
                role="role",
                landing="/dashboard",
                cookie=lambda uid: f"session=user-{uid}; HttpOnly",
            )
            maestrano = MaestranoProvider(lambda: holder["m"], sso=sign_in, initial_import=["invoices"])
            hub = Hub(
                sessionmaker(engine, expire_on_commit=False),
                models=[Invoice, Customer, Payment],
                providers=[maestrano, quickbooks, xero_provider],
                vault=Vault([Vault.generate_key()]),
                retry=RetryPolicy(base=0.05, cap=0.2, max_attempts=8),
            )
            hub.install()
            running.callback(hub.uninstall)
            connec_url = running.enter_context(serve(connec.app))
            billing_url = running.enter_context(serve_wsgi(billing))
            app_url = running.enter_context(serve(ASGIAdapter(hub.webhooks())))
            web = running.enter_context(httpx.Client(base_url=app_url))
            configs = []
            for key in MARKETPLACES:
                config = marketplace_config(key, idp_certificate=idps[key].certificate)
                config["app"]["host"] = config["sso"]["idm"] = app_url
                config["api"]["host"] = billing_url
                config["connec"]["host"] = connec_url
                configs.append(config)
            holder["m"] = Marketplaces.from_config({"marketplaces": configs})
            story = _Story(console, hub, holder["m"], idps, connec, billing, web, summary)
            story.qbo, story.intuit, story.xero, story.qbo_url = qbo, intuit, xero, qbo_url
            story.play()
        summary.scopes = [
            (str(s.scope), s.connection or "-", s.linked, s.pending_changes + s.dead_changes)
            for s in _status(engine)
            if s.connection is not None
        ]
        return summary
    finally:
        for signal, receiver in counters:
            signal.disconnect(receiver)
        engine.dispose()


def _status(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return status(conn)


def _count_signals(summary: Summary) -> list[tuple[Any, Any]]:
    def pushed(sender: Any, **kw: Any) -> None:
        summary.pushed += kw.get("action") in ("create", "update", "delete")

    def failed(sender: Any, **kw: Any) -> None:
        summary.retried += 1

    def dead(sender: Any, **kw: Any) -> None:
        summary.dead += 1

    pairs = [(signals.change_pushed, pushed), (signals.push_failed, failed), (signals.change_dead, dead)]
    for signal, receiver in pairs:
        signal.connect(receiver)
    return pairs


class _Story:
    """The steps, in order, sharing the sandboxes and the hub."""

    def __init__(
        self,
        console: Console,
        hub: Hub,
        marketplaces: Any,
        idps: dict[str, Any],
        connec: Any,
        billing: Any,
        web: httpx.Client,
        summary: Summary,
    ) -> None:
        self.console, self.hub, self.marketplaces, self.idps = console, hub, marketplaces, idps
        self.connec, self.billing, self.web, self.summary = connec, billing, web, summary
        self.orgs: dict[str, int] = {}
        self.qbo: Any = None
        self.xero: Any = None
        self.intuit: Any = None
        self.qbo_url = ""

    def play(self) -> None:
        steps = [
            ("Two marketplaces configured", self.configure),
            ("A user signs in through SAML SSO in each marketplace", self.sign_in),
            ("A worker runs each group's first Connec! import", self.first_import),
            ("Invoices created locally are pushed to their marketplace's Connec!", self.push),
            ("A direct customer on QuickBooks Online and Xero: customer first, then the invoice", self.quickbooks),
            ("The invoice is paid in QuickBooks: paid locally, and the payment reaches Xero", self.payment),
            ("A company with existing books in QuickBooks: adopted, then the rest exported", self.onboard),
            ("A Connec! webhook creates an invoice locally", self.webhook),
            ("A pull backfills the second group's history", self.backfill),
            ("Connec! fails twice; the push retries and recovers", self.fault),
            ("The monthly billing job runs twice and bills once", self.bill),
            ("A group is deleted through the account webhook", self.delete_group),
            ("The connected objects match the sandboxes", self.verify),
        ]
        for number, (title, step) in enumerate(steps, 1):
            with _step(self.console, number, title):
                step()

    # -- helpers ---------------------------------------------------------------------------

    def scope(self, key: str) -> Scope:
        return Scope("maestrano", key, MARKETPLACES[key][1])

    def payment_ids(self) -> list[int]:
        with self.hub.session_factory() as s:
            return list(s.scalars(select(Payment.id)))

    def invoices(self, key: str) -> dict[int, str]:
        with self.hub.session_factory() as s:
            rows = s.execute(select(Invoice.id, Invoice.number).where(Invoice.organization_id == self.orgs[key]))
            return {i: n for i, n in rows}

    # -- the steps -------------------------------------------------------------------------

    def configure(self) -> None:
        table = Listing("marketplaces", ("marketplace", "api id", "Connec!", "identity provider"))
        for m in self.marketplaces:
            table.add(m.key, m.api.id, m.connec.host, m.sso.idp)
            metadata = self.web.get(f"/mno-enterprise/{m.key}/metadata", auth=(m.api.id, m.api.key))
            check(metadata.status_code == 200, f"metadata of {m.key} answered {metadata.status_code}")
            check(m.api.key not in metadata.text, f"the metadata of {m.key} shows its api key")
        table.print(self.console)
        _say(self.console, "metadata served for each, with no secret in it")

    def sign_in(self) -> None:
        self.connec.seed(
            MARKETPLACES["maestrano"][1], "invoices", [{"title": f"HUB-{i}", "amount": 100 + i} for i in range(3)]
        )
        for key, (name, group, email) in MARKETPLACES.items():
            market = self.marketplaces.get(key)
            # the browser starts the sign-in here (keeping the binding cookie), the IdP answers it
            started = self.web.get(f"/mno-enterprise/{key}/saml/initialize", follow_redirects=False)
            check(
                started.status_code == 302 and started.headers["location"].startswith(market.api.url),
                f"SSO start at {key} answered {started.status_code}, not a redirect to its IdP",
            )
            form = self.idps[key].answer(
                started.headers["location"],
                {"uid": f"usr-{group}", "email": email, "group_uid": group, "group_name": name, "group_role": "Admin"},
            )
            answer = self.web.post(f"/mno-enterprise/{key}/saml/consume", data=form, follow_redirects=False)
            check(answer.status_code == 302, f"SSO into {key} answered {answer.status_code}: {answer.text[:200]}")
            again = self.web.post(f"/mno-enterprise/{key}/saml/consume", data=form, follow_redirects=False)  # logs why
            check(again.status_code == 403, f"the same SAML answer was accepted twice by {key}")
            with self.hub.session_factory() as s:
                link = identity.resolve(s, self.scope(key), "groups", group)
                check(link is not None, f"the group {group} of {key} is not in the identity map")
                assert link is not None
                self.orgs[key] = int(link.local_id)
                org = s.get(Organization, self.orgs[key])
                check(org is not None and org.name == name, f"no organization {name} for {key}")
                members = s.scalars(select(User).where(User.organization_id == self.orgs[key])).all()
                check([u.email for u in members] == [email], f"{email} is not a member of {name}")
            _say(self.console, f"[bold]{email}[/bold] signed in to {key}: organization {name}, connected to {group}")
            _say(self.console, "the same answer posted again: 403, its reason only in the log (above)")

    def first_import(self) -> None:
        self.hub.drain()
        found = sorted(self.invoices("maestrano").values())
        check(found == ["HUB-0", "HUB-1", "HUB-2"], f"the first import brought {found}")
        self.summary.received += len(found)
        _say(self.console, f"Acme now has the {len(found)} invoices its group already had in Connec!")

    def push(self) -> None:
        with self.hub.session_factory.begin() as s:
            s.add(Invoice(id=1001, organization_id=self.orgs["maestrano"], number="ACME-1001", amount=1200))
            s.add(Invoice(id=2001, organization_id=self.orgs["partner"], number="GLOBEX-2001", amount=800))
        self.hub.drain()
        for key, number in (("maestrano", "ACME-1001"), ("partner", "GLOBEX-2001")):
            group = MARKETPLACES[key][1]
            titles = {r["title"] for r in self.connec.live(group, "invoices").values()}
            check(number in titles, f"{number} did not reach {group} at Connec!")
            check(
                self.connec.auth_seen[group] == {f"app-{key}"},
                f"{group} was called with another marketplace's credentials",
            )
            _say(self.console, f"{number} → Connec! group {group}, with {key}'s credentials only")

    def quickbooks(self) -> None:
        from connected_objects import connections
        from connected_objects.oauth import tokens as oauth

        realm = "9130354"
        scope = Scope("quickbooks", "production", realm)
        tokens = self.intuit.issue()
        expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
        with self.hub.session_factory.begin() as s:
            initech = Organization(name="Initech (direct customer)")
            s.add(initech)
            s.flush()
            self.orgs["direct"] = initech.id
            connections.connect(s, "demo_organization", initech.id, scope, credentials=tokens, vault=self.hub.vault)
            oauth.store(s, scope, tokens, expired, self.hub.vault)  # its access token has just run out
            xero_scope = Scope("xero", "production", "tenant-initech")
            connections.connect(
                s, "demo_organization", initech.id, xero_scope, credentials={"access_token": "x"}, vault=self.hub.vault
            )
        with self.hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=self.orgs["direct"], name="Wayne Enterprises"))
            s.add(
                Invoice(
                    id=4001,
                    organization_id=self.orgs["direct"],
                    customer_id=1,
                    number="INI-4001",
                    amount=9900,
                    total=Decimal("99.00"),
                )
            )
        self.hub.drain()
        self.hub.drain()  # the invoice waited for its customer, pushed in the first round
        customers = self.qbo.live(realm, "Customer")
        invoices = self.qbo.live(realm, "Invoice")
        check([c["DisplayName"] for c in customers.values()] == ["Wayne Enterprises"], "the customer is not at QBO")
        check(len(invoices) == 1, f"{len(invoices)} invoices at QBO, not 1")
        (invoice,) = invoices.values()
        (customer_id,) = customers
        check(invoice["CustomerRef"] == {"value": customer_id}, "the QBO invoice does not point at its customer")
        check(self.intuit.refreshes == 1, f"the expired token was refreshed {self.intuit.refreshes} times, not once")
        _say(self.console, f"QuickBooks: token refreshed once; Customer {customer_id}, then invoice INI-4001 → it")
        contacts, xero_invoices = (
            self.xero.live("tenant-initech", "Contacts"),
            self.xero.live("tenant-initech", "Invoices"),
        )
        check(len(contacts) == 1 and len(xero_invoices) == 1, "the contact or the invoice is not at Xero")
        ((contact_id, _),) = contacts.items()
        (xero_invoice,) = xero_invoices.values()
        check(xero_invoice["Contact"]["ContactID"] == contact_id, "the Xero invoice does not point at its contact")
        _say(self.console, f"Xero: contact {contact_id[:8]}…, then invoice INI-4001 → it")

    def payment(self) -> None:
        from connected_objects_quickbooks.testing import qbo_delivery

        realm = "9130354"
        ((qbo_invoice, invoice),) = self.qbo.live(realm, "Invoice").items()
        # the bookkeeper records the customer's payment in QuickBooks (its API, validated as QuickBooks does)
        made = httpx.post(
            f"{self.qbo_url}/v3/company/{realm}/payment",
            params={"requestid": "demo-bookkeeper-payment"},
            headers={"Authorization": "Bearer bookkeeper"},
            json={
                "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": 99.00,
                "TxnDate": "2026-12-01",
                "Line": [{"Amount": 99.00, "LinkedTxn": [{"TxnId": qbo_invoice, "TxnType": "Invoice"}]}],
            },
        )
        check(made.status_code == 200, f"QuickBooks refused the payment: {made.text[:200]}")
        # QuickBooks notifies the payment, and the invoice whose Balance it moved
        for entity, rid in (("Payment", made.json()["Payment"]["Id"]), ("Invoice", qbo_invoice)):
            body, headers = qbo_delivery(QBO_VERIFIER, realm, entity, rid)
            answer = self.web.post("/quickbooks/production/webhooks", content=body, headers=headers)
            check(answer.status_code == 200, f"the QuickBooks {entity} webhook answered {answer.status_code}")
        self.hub.drain()
        self.hub.drain()  # the payment waits for nothing, but its push to Xero comes after it is applied
        with self.hub.session_factory() as s:
            local = s.get(Invoice, 4001)
            payments = s.scalars(select(Payment)).all()
        check(local is not None and local.balance == 0, "INI-4001 is not paid locally")
        check(
            [(p.invoice_id, p.amount) for p in payments] == [(4001, Decimal("99.00"))],
            f"the payments here are {[(p.invoice_id, p.amount) for p in payments]}",
        )
        ((xero_invoice_id, xero_invoice),) = self.xero.live("tenant-initech", "Invoices").items()
        xero_payments = list(self.xero.live("tenant-initech", "Payments").values())
        check(
            [(p["Invoice"]["InvoiceID"], p["Amount"]) for p in xero_payments] == [(xero_invoice_id, 99.0)],
            "the payment did not reach Xero against INI-4001",
        )
        check(
            (xero_invoice["AmountDue"], xero_invoice["Status"]) == (0, "PAID"),
            f"Xero still has {xero_invoice['AmountDue']} due on INI-4001 ({xero_invoice['Status']})",
        )
        self.summary.received += 1
        _say(self.console, "QuickBooks: payment of 99.00 on INI-4001 → webhook → paid here (balance 0)")
        _say(self.console, "Xero: the payment pushed against INI-4001, which is now PAID with nothing due")

    def onboard(self) -> None:
        from connected_objects_quickbooks.testing import existing_books

        from connected_objects import connections
        from connected_objects.receive.adopt import link_by_hand
        from connected_objects.store import ambiguity

        scope = Scope("quickbooks", "production", ONBOARDED)
        # years of books: 6 customers and 6 invoices (invoice n bills customer (n - 1) % 3 + 1), kept before us
        books = existing_books(
            self.qbo, ONBOARDED, customers=6, items=1, invoices=6, customer_of=lambda n: (n - 1) % 3 + 1
        )
        with self.hub.session_factory.begin() as s:
            stark = Organization(name="Stark Industries (existing books)")
            s.add(stark)
            s.flush()
            self.orgs["onboarded"] = stark.id
            # the application's rows from before: three of the company's customers, spelled its own way (one
            # entered twice), and two of its own, with an invoice each but the twin
            names = [
                "customer 0001",
                "Customer  0002",
                "Customer 0003",
                "CUSTOMER 0003 ",
                "Pepper Potts",
                "Happy Hogan",
            ]
            clients = [Customer(organization_id=stark.id, name=name) for name in names]
            s.add_all(clients)
            s.flush()
            numbers = ["INV-00001", "INV-00002", "INV-00003", None, "STARK-1", "STARK-2"]
            s.add_all(
                Invoice(organization_id=stark.id, customer_id=c.id, number=n, total=Decimal("120.00"))
                for c, n in zip(clients, numbers, strict=True)
                if n is not None
            )
            first, twin = str(clients[2].id), str(clients[3].id)
        with self.hub.session_factory.begin() as s:  # then the bookkeeper connects the company
            connections.connect(
                s,
                "demo_organization",
                self.orgs["onboarded"],
                scope,
                credentials={"access_token": "stark-token"},
                vault=self.hub.vault,
                directions={"Invoice": "push"},  # the company's other customers come in, its invoices do not
            )
        creates = self.qbo.creates

        def counts(report: Any) -> list[tuple[int, int, int, int]]:
            return [
                (e.matched, sum(len(a.local_ids) for a in e.ambiguous), e.local_only, e.remote_only)
                for e in report.entities
            ]

        dry = self.hub.adopt(scope, entities=["Customer", "Invoice"])
        check(counts(dry) == [(2, 2, 2, 3), (3, 0, 2, 3)], f"the dry run found {dry.summary()}")
        with self.hub.session_factory() as s:
            linked = identity.resolve_many_local(s, scope, "demo_customer", [str(c.id) for c in clients])
        check(not linked and self.qbo.creates == creates, "the dry run wrote something")
        for e, (matched, ambiguous, local_only, remote_only) in zip(dry.entities, counts(dry), strict=True):
            _say(
                self.console,
                f"dry run, {e.entity}: {matched} matched, {ambiguous} ambiguous, {local_only} here only, "
                f"{remote_only} there only",
            )

        applied = self.hub.adopt(scope, entities=["Customer", "Invoice"], apply=True)
        customers, invoices = applied.entities
        check(
            (customers.linked, customers.imported, invoices.linked, invoices.imported) == (2, 3, 3, 0),
            f"adopting did {applied.summary()}",
        )
        with self.hub.session_factory() as s:
            state = connections.get(s, scope)
            held = ambiguity.count(s, scope)
        check(state is not None and state.onboarding == "attention" and held == 2, f"after adopting: {held} held")
        check(self.qbo.creates == creates, "adopting wrote to QuickBooks")
        self.summary.received += customers.imported
        _say(self.console, "applied: 2 customers and 3 invoices linked, 3 customers imported, the twins held")

        # the operator decides: the first "Customer 0003" is the company's; its twin stays held
        with self.hub.session_factory.begin() as s:
            link_by_hand(s, scope, "Customer", "demo_customer", first, books.customers["Customer 0003"])
        with self.hub.session_factory() as s:
            why = ambiguity.held(s, scope, [("demo_customer", twin)])
        check("rename or merge it" in why.get(("demo_customer", twin), ""), f"the twin is not held: {why}")
        _say(self.console, f"linked by hand: customer {first} is Customer 0003; its twin {twin} stays held")

        # customers first, so that no invoice waits for its customer's create (Hub(defer_delay=...))
        exported = self.hub.export(scope, entities=["Customer"])
        self.hub.drain()
        exported_invoices = self.hub.export(scope, entities=["Invoice"])
        self.hub.drain()
        check(
            (exported.queued, exported.ambiguous, exported_invoices.queued)
            == ({"Customer": 2}, {"Customer": 1}, {"Invoice": 2}),
            f"the export did {exported.summary()}; {exported_invoices.summary()}",
        )
        live = self.qbo.live(ONBOARDED, "Customer")
        names_there = [r["DisplayName"] for r in live.values()]
        check(self.qbo.creates - creates == 4, f"{self.qbo.creates - creates} records created, not 4")
        check(
            len(names_there) == 8 and len({" ".join(n.split()).casefold() for n in names_there}) == 8,
            f"QuickBooks holds {sorted(names_there)}",
        )
        check(len(self.qbo.live(ONBOARDED, "Invoice")) == 8, "the two invoices of its own did not arrive")
        _say(self.console, "exported: 2 customers and 2 invoices of its own created, the twin left out")
        _say(self.console, f"QuickBooks: {len(live)} customers and 8 invoices, none twice, 4 creates in all")

    def webhook(self) -> None:
        from connected_objects_maestrano.testing import connec_delivery

        market = self.marketplaces.get("maestrano")
        group = MARKETPLACES["maestrano"][1]
        before = set(self.connec.live(group, "invoices"))
        # another application of the marketplace creates an invoice in Connec!, which notifies us
        self.connec.seed(group, "invoices", [{"title": "FROM-CONNEC-777", "amount": 777}])
        (rid,) = set(self.connec.live(group, "invoices")) - before
        record = self.connec.view(group, "invoices", rid)
        body, headers = connec_delivery({"invoices": [record]}, market.api.id, market.api.key)
        forged = self.web.post(
            "/mno-enterprise/maestrano/connec/receive",
            content=body,
            headers={**headers, "authorization": "Basic Zm9yZ2VkOm5vcGU="},
        )
        check(forged.status_code == 401, f"a forged notification answered {forged.status_code}")
        answer = self.web.post("/mno-enterprise/maestrano/connec/receive", content=body, headers=headers)
        check(answer.status_code == 200, f"the notification answered {answer.status_code}")
        self.hub.drain()
        check("FROM-CONNEC-777" in self.invoices("maestrano").values(), "the notified invoice was not created locally")
        self.summary.received += 1
        _say(self.console, "a forged delivery got 401 and changed nothing; the real one made FROM-CONNEC-777 locally")

    def backfill(self) -> None:
        group = MARKETPLACES["partner"][1]
        self.connec.seed(group, "invoices", [{"title": f"HISTORY-{i:04d}", "amount": i} for i in range(300)])
        with Progress(
            TextColumn("   pulling invoices"), BarColumn(), MofNCompleteColumn(), console=self.console, transient=True
        ) as bar:
            task = bar.add_task("pull", total=300)

            def progress(stats: PullStats) -> None:
                bar.update(task, completed=stats.records)

            stats = asyncio.run(pull(self.hub, self.scope("partner"), "invoices", progress=progress))
        history = [n for n in self.invoices("partner").values() if n.startswith("HISTORY-")]
        check(len(history) == 300, f"the backfill made {len(history)} invoices, not 300")
        self.summary.received += stats.created
        _say(
            self.console, f"{stats.records} records in {stats.pages} pages; {stats.created} invoices created for Globex"
        )

    def fault(self) -> None:
        retried = self.summary.retried
        self.connec.outage = 2
        with self.hub.session_factory.begin() as s:
            s.add_all(
                Invoice(id=3000 + i, organization_id=self.orgs["maestrano"], number=f"ACME-30{i:02d}", amount=i)
                for i in range(5)
            )
        self.hub.drain()
        titles = {r["title"] for r in self.connec.live(MARKETPLACES["maestrano"][1], "invoices").values()}
        check(all(f"ACME-30{i:02d}" in titles for i in range(5)), "invoices were lost in the outage")
        check(self.summary.retried > retried, "the outage caused no retry")
        _say(
            self.console,
            f"503 twice; {self.summary.retried - retried} failed attempt(s) retried; all 5 arrived, none twice",
        )

    def bill(self) -> None:
        from connected_objects_maestrano.billing import BillingClient
        from connected_objects_maestrano.billing import bill_period

        for _ in range(2):
            with self.hub.session_factory() as s:
                active = s.execute(
                    select(connection_table.c.marketplace, connection_table.c.account).where(
                        connection_table.c.provider == "maestrano", connection_table.c.status == "active"
                    )
                ).all()
                for key, group in active:
                    with BillingClient(self.marketplaces.get(key)) as client:
                        bill_period(s, client, group, "2026-11", PLAN, "Monthly plan")
                        s.commit()
                billed = {
                    int(o)
                    for (o,) in s.execute(
                        select(connection_table.c.owner_id).where(connection_table.c.provider == "maestrano")
                    )
                }
                for org in s.scalars(select(Organization).where(Organization.id.not_in(billed))):
                    if (
                        s.scalar(
                            select(func.count()).where(
                                LocalBill.organization_id == org.id, LocalBill.period == "2026-11"
                            )
                        )
                        == 0
                    ):
                        s.add(LocalBill(organization_id=org.id, period="2026-11", amount_cents=4900))
                s.commit()
        self.summary.billed_remote = len(self.billing.bills)
        with self.hub.session_factory() as s:
            self.summary.billed_local = s.scalar(select(func.count()).select_from(LocalBill)) or 0
        check(self.summary.billed_remote == 2, f"{self.summary.billed_remote} bills at the billing API, not 2")
        check(self.summary.billed_local == 2, f"{self.summary.billed_local} local bills, not 2")
        _say(self.console, "Acme and Globex billed once each through their marketplace; Initech and Stark locally")

    def delete_group(self) -> None:
        from connected_objects_maestrano.testing import account_delivery

        market = self.marketplaces.get("partner")
        group = MARKETPLACES["partner"][1]
        method, path, headers = account_delivery("partner", group, None, market.api.id, market.api.key)
        first = self.web.request(method, path, headers=headers)
        again = self.web.request(method, path, headers=headers)
        check(
            first.status_code == 200 and first.json().get("changed") is True,
            f"deleting the group answered {first.text}",
        )
        check(again.status_code == 200 and again.json().get("changed") is False, "a second delivery changed something")
        with self.hub.session_factory() as s:
            state = s.scalar(
                select(connection_table.c.status).where(
                    connection_table.c.marketplace == "partner", connection_table.c.account == group
                )
            )
            linked = identity.resolve_many_local(
                s, self.scope("partner"), "demo_invoice", [str(i) for i in self.invoices("partner")]
            )
        check(state == "revoked", f"the connection of {group} is {state}")
        check(not linked, f"{len(linked)} Globex invoices are still linked")
        _say(self.console, f"{group}: connection revoked, its links tombstoned; a second delivery was a no-op")

    def verify(self) -> None:
        columns = ("scope", "connection", "linked locally", "remote", "match")
        table = Listing("the database against the sandboxes", columns)
        for key, (_name, group, _email) in MARKETPLACES.items():
            scope = self.scope(key)
            with self.hub.session_factory() as s:
                local = identity.resolve_many_local(s, scope, "demo_invoice", [str(i) for i in self.invoices(key)])
                state = s.scalar(
                    select(connection_table.c.status).where(
                        connection_table.c.marketplace == key, connection_table.c.account == group
                    )
                )
            linked = {link.foreign_id for link in local.values()}
            remote = set(self.connec.live(group, "invoices"))
            ok = linked == remote if state == "active" else not linked
            table.add(
                str(scope),
                state or "-",
                str(len(linked)),
                str(len(remote)),
                "yes" if ok else "NO",
            )
            check(ok, f"{scope}: {len(linked)} linked locally, {len(remote)} at Connec!")
        realm = "9130354"
        with self.hub.session_factory() as s:
            qbo_scope = Scope("quickbooks", "production", realm)
            qbo_linked = {
                (entity, link.foreign_id)
                for entity, local_type, ids in (
                    ("Customer", "demo_customer", ["1"]),
                    ("Invoice", "demo_invoice", ["4001"]),
                    ("Payment", "demo_payment", [str(p) for p in self.payment_ids()]),
                )
                for link in identity.resolve_many_local(s, qbo_scope, local_type, ids).values()
            }
        qbo_remote = {(e, rid) for e in ("Customer", "Invoice", "Payment") for rid in self.qbo.live(realm, e)}
        table.add(
            str(qbo_scope),
            "active",
            str(len(qbo_linked)),
            f"{len(qbo_remote)} at QBO",
            "yes" if qbo_linked == qbo_remote else "NO",
        )
        check(qbo_linked == qbo_remote, f"{qbo_scope}: linked {sorted(qbo_linked)}, at QuickBooks {sorted(qbo_remote)}")
        with self.hub.session_factory() as s:
            xero_scope = Scope("xero", "production", "tenant-initech")
            xero_linked = {
                link.foreign_id
                for local_type, ids in (
                    ("demo_customer", ["1"]),
                    ("demo_invoice", ["4001"]),
                    ("demo_payment", [str(p) for p in self.payment_ids()]),
                )
                for link in identity.resolve_many_local(s, xero_scope, local_type, ids).values()
            }
        xero_remote = {rid for e in ("Contacts", "Invoices", "Payments") for rid in self.xero.live("tenant-initech", e)}
        ok = xero_linked == xero_remote
        table.add(
            str(xero_scope),
            "active",
            str(len(xero_linked)),
            f"{len(xero_remote)} at Xero",
            "yes" if ok else "NO",
        )
        check(ok, f"{xero_scope}: linked {sorted(xero_linked)}, at Xero {sorted(xero_remote)}")
        table.print(self.console)
        check(self.summary.dead == 0, f"{self.summary.dead} change(s) died")
