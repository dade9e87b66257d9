"""Billing demo: an Italian telco/SaaS catalog and 14 months of history, written through the services.

The kernel clock travels through the months (``clock.travel_to``): customers subscribe, upgrade,
downgrade and cancel on the days they did, usage is ingested as it happened, the billing run runs
every week and customers pay (most on time, some late, a few not at all), so the revenue analytics,
the dunning queue and the portal all show a believable past.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fedele.billing.models import BillingAccount, Invoice, PlanVersion, Subscription
from fedele.billing.services import catalog
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.services.catalog import ChargeInput
from fedele.billing.services.dunning import dunning_run
from fedele.billing.services.payments import payment_record
from fedele.billing.services.subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
)
from fedele.billing.services.usage import usage_ingest
from fedele.shared import clock
from fedele.shared.demo import DemoContext

ROME = ZoneInfo("Europe/Rome")
HISTORY_MONTHS = 14


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    fibra_casa: PlanVersion
    fibra_business: PlanVersion
    fibra_annuale: PlanVersion
    suite: PlanVersion
    suite_annual: PlanVersion
    api_pro: PlanVersion
    mobile: PlanVersion


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ROME).astimezone(UTC)


def _version(plan: Any, charges: list[ChargeInput], *, setup_fee: str = "0", actor_id: int) -> PlanVersion:
    version = catalog.plan_version_create(
        plan=plan, setup_fee=Decimal(setup_fee), copy_latest=False, actor_id=actor_id
    )
    for charge in charges:
        catalog.plan_charge_add(version=version, data=charge, actor_id=actor_id)
    return catalog.plan_version_publish(version=version, actor_id=actor_id)


def _flat(amount: str, name: str = "Canone") -> ChargeInput:
    return ChargeInput(code="canone", name=name, kind="recurring", model="flat", flat_amount=Decimal(amount))


def _catalog(actor_id: int) -> DemoCatalog:
    fibre = catalog.product_create(
        code="fibra", name="Fibra FTTH", provisioning_kind="fibre_line", actor_id=actor_id
    )
    suite = catalog.product_create(
        code="suite-cloud", name="Suite Cloud (licenze)", provisioning_kind="licence_seat", actor_id=actor_id
    )
    api = catalog.product_create(code="api", name="API per sviluppatori", actor_id=actor_id)
    mobile = catalog.product_create(code="mobile", name="Mobile 100 GB", actor_id=actor_id)
    calls = catalog.metric_create(code="api-calls", name="Chiamate API", unit="chiamate", actor_id=actor_id)
    catalog.metric_create(
        code="gb-traffic", name="Traffico dati", unit="GB", aggregation="sum", actor_id=actor_id
    )

    def plan(product: Any, code: str, name: str, period: str = "month", trial: int = 0) -> Any:
        return catalog.plan_create(
            product=product, code=code, name=name, billing_period=period, trial_days=trial, actor_id=actor_id
        )

    seats = ChargeInput(
        code="licenze", name="Licenze", kind="recurring", model="per_unit", unit_amount=Decimal("12.00")
    )
    seats_year = ChargeInput(
        code="licenze", name="Licenze", kind="recurring", model="per_unit", unit_amount=Decimal("120.00")
    )
    api_usage = ChargeInput(
        code="chiamate",
        name="Chiamate API oltre la soglia",
        kind="usage",
        model="graduated",
        metric=calls,
        tiers=(
            {"up_to": 10000, "unit_amount": "0", "flat_amount": "0"},
            {"up_to": 100000, "unit_amount": "0.002", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.001", "flat_amount": "0"},
        ),
        position=10,
    )
    result = DemoCatalog(
        fibra_casa=_version(
            plan(fibre, "fibra-casa", "Fibra Casa 1 Gbps"),
            [_flat("29.90")],
            setup_fee="49.00",
            actor_id=actor_id,
        ),
        fibra_business=_version(
            plan(fibre, "fibra-business", "Fibra Business 2.5 Gbps"),
            [_flat("59.00")],
            setup_fee="99.00",
            actor_id=actor_id,
        ),
        fibra_annuale=_version(
            plan(fibre, "fibra-casa-annuale", "Fibra Casa annuale", "year"),
            [_flat("299.00")],
            actor_id=actor_id,
        ),
        suite=_version(plan(suite, "suite-cloud", "Suite Cloud mensile"), [seats], actor_id=actor_id),
        suite_annual=_version(
            plan(suite, "suite-cloud-annuale", "Suite Cloud annuale", "year"), [seats_year], actor_id=actor_id
        ),
        api_pro=_version(plan(api, "api-pro", "API Pro"), [_flat("49.00"), api_usage], actor_id=actor_id),
        mobile=_version(
            plan(mobile, "mobile-100", "Mobile 100 GB", trial=30), [_flat("9.99")], actor_id=actor_id
        ),
    )
    catalog.coupon_create(
        code="BENVENUTO10",
        name="Benvenuto: 10% per 3 mesi",
        percent_off=Decimal(10),
        duration="repeating",
        duration_periods=3,
        actor_id=actor_id,
    )
    catalog.coupon_create(
        code="FIBRA5",
        name="5 EUR di sconto una tantum",
        amount_off=Decimal(5),
        currency="EUR",
        actor_id=actor_id,
    )
    return result


def _choose_plan(rng: random.Random, plans: DemoCatalog, segment: str) -> tuple[PlanVersion, Decimal]:
    if segment == "consumer":
        version = rng.choices([plans.fibra_casa, plans.fibra_annuale, plans.mobile], [60, 15, 25])[0]
        return version, Decimal(1)
    version = rng.choices(
        [plans.fibra_business, plans.suite, plans.suite_annual, plans.api_pro], [35, 35, 10, 20]
    )[0]
    quantity = Decimal(rng.randint(3, 25)) if version in (plans.suite, plans.suite_annual) else Decimal(1)
    return version, quantity


def load(context: DemoContext) -> None:
    customers: list[str] = list(context.records.get("customers", []))
    if not customers:
        return
    rng = random.Random(context.seed + 4)  # noqa: S311  (reproducible demo data, not security)
    admin_id = int(context.users["admin@fedele.demo"].pk)
    today = clock.today()
    first_month = date(today.year, today.month, 1)
    for _ in range(HISTORY_MONTHS):
        first_month = (first_month - timedelta(days=1)).replace(day=1)
    with clock.travel_to(_at(first_month - timedelta(days=10))):
        plans = _catalog(admin_id)
    portal_customer = context.records.get("portal_customer")
    subscribers = rng.sample(customers, min(len(customers), int(context.options.get("subscribers", 220))))
    if portal_customer and portal_customer not in subscribers:
        subscribers[0] = portal_customer
    _history(context, rng, plans, subscribers, first_month, today, admin_id, portal_customer)


def _history(
    context: DemoContext,
    rng: random.Random,
    plans: DemoCatalog,
    subscribers: list[str],
    first_month: date,
    today: date,
    admin_id: int,
    portal_customer: str | None,
) -> None:
    from fedele.customers.facade import customer_summary

    # Each subscriber starts on a random day of the history; the portal customer is an early one.
    start_days = {
        customer: first_month + timedelta(days=rng.randint(0, max(1, (today - first_month).days - 20)))
        for customer in subscribers
    }
    if portal_customer:
        start_days[portal_customer] = first_month + timedelta(days=3)
    late_payers = set(rng.sample(subscribers, len(subscribers) // 12))
    day = first_month
    total_days = (today - first_month).days
    while day <= today:
        with clock.travel_to(_at(day)):
            for customer, start in start_days.items():
                if start == day:
                    summary = customer_summary(customer)
                    segment = summary.segment if summary else "consumer"
                    _subscribe(rng, plans, customer, segment, day, admin_id, customer == portal_customer)
            if day.weekday() == 2:  # mid-week: changes and cancellations
                _changes(rng, plans, day, admin_id, portal_customer)
            if day.weekday() == 0:  # Mondays: usage of the week, billing run, payments
                _usage(rng, plans, day)
                run = billing_run_start(as_of=day, actor_id=admin_id, execute=False)
                billing_run_execute(run.pk)
                _payments(rng, day, late_payers, admin_id)
                dunning_run(today=day)
        if (day - first_month).days % 30 == 0:
            context.progress("billing history", (day - first_month).days, total_days)
        day += timedelta(days=1)
    context.progress("billing history", total_days, total_days)
    context.counts["subscriptions"] = Subscription.objects.count()
    context.counts["invoices"] = Invoice.objects.count()


def _subscribe(
    rng: random.Random,
    plans: DemoCatalog,
    customer: str,
    segment: str,
    day: date,
    admin_id: int,
    is_portal: bool,
) -> None:
    account = billing_account_for_customer(customer_public_id=customer)
    if is_portal:
        version, quantity = plans.fibra_casa, Decimal(1)
    else:
        version, quantity = _choose_plan(rng, plans, segment)
    coupon = "BENVENUTO10" if rng.random() < 0.15 else ""
    subscription_create(
        account=account,
        plan_version=version,
        quantity=quantity,
        start_on=day,
        coupon_code=coupon,
        actor_id=admin_id,
    )


def _changes(
    rng: random.Random, plans: DemoCatalog, day: date, admin_id: int, portal_customer: str | None
) -> None:
    live = list(
        Subscription.objects.filter(
            status="active",
            started_on__lt=day - timedelta(days=20),
            cancel_at_period_end=False,
            pending_change__isnull=True,
        )
        .exclude(account__customer__public_id=portal_customer or "00000000-0000-0000-0000-000000000000")
        .select_related("plan_version")
        .order_by("id")
    )
    if not live:
        return
    for subscription in rng.sample(live, max(1, len(live) // 60)):
        roll = rng.random()
        version = subscription.plan_version
        if roll < 0.35 and version.pk == plans.fibra_casa.pk:
            subscription_change(
                subscription=subscription, plan_version=plans.fibra_business, actor_id=admin_id
            )
        elif roll < 0.6 and version.pk in (plans.suite.pk, plans.suite_annual.pk):
            step = Decimal(rng.choice([-2, -1, 1, 2, 3, 5]))
            quantity = max(Decimal(1), subscription.quantity + step)
            if quantity != subscription.quantity:
                subscription_change(subscription=subscription, quantity=quantity, actor_id=admin_id)
        elif roll < 0.7 and version.pk == plans.fibra_business.pk:
            subscription_change(
                subscription=subscription, plan_version=plans.fibra_casa, at="period_end", actor_id=admin_id
            )
        else:
            reason = rng.choice(
                ["Prezzo troppo alto", "Passato a un concorrente", "Trasloco", "Non più necessario"]
            )
            subscription_cancel(subscription=subscription, at="period_end", reason=reason, actor_id=admin_id)


def _usage(rng: random.Random, plans: DemoCatalog, day: date) -> None:
    subscriptions = Subscription.objects.filter(plan_version=plans.api_pro, status="active").select_related(
        "account__customer"
    )
    events: list[dict[str, Any]] = []
    for subscription in subscriptions:
        size = rng.choice([2_000, 8_000, 20_000, 45_000])
        for offset in range(7):
            moment = _at(day - timedelta(days=7 - offset), hour=12)
            if moment.date() < subscription.started_on:
                continue
            events.append(
                {
                    "external_id": f"demo-{subscription.pk}-{day.isoformat()}-{offset}",
                    "subscription": str(subscription.public_id),
                    "metric": "api-calls",
                    "quantity": str(rng.randint(size // 2, size)),
                    "timestamp": moment.isoformat(),
                }
            )
    for start in range(0, len(events), 5_000):
        usage_ingest(events=events[start : start + 5_000], mode="good_rows")


def _payments(rng: random.Random, day: date, late_payers: set[str], admin_id: int) -> None:
    """Pay what was invoiced: most customers within two weeks, late payers after 45 days or never."""
    open_invoices = Invoice.objects.filter(kind="invoice", status="finalised").select_related(
        "account__customer"
    )
    for invoice in open_invoices:
        customer = str(invoice.account.customer.public_id)
        assert invoice.issue_date is not None
        age = (day - invoice.issue_date).days
        if customer in late_payers:
            if age < 45 or rng.random() < 0.5:
                continue
        elif age < rng.choice([0, 7, 7, 14]):
            continue
        amount = invoice.amount_due
        if amount <= 0:
            continue
        payment_record(
            account=BillingAccount.objects.get(pk=invoice.account_id),
            amount=amount,
            currency=invoice.currency,
            method="bank_transfer",
            received_on=day,
            external_id=f"demo-bonifico-{invoice.number}",
            invoice=invoice,
            actor_id=admin_id,
        )
