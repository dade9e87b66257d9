"""Planning one batch of the billing run in memory: load the due subscriptions' context in a few
queries, then apply each period-boundary transition and price its invoice (no writes here).

See services/billing_run.py for the rules; services/billing_batch.py writes what is planned.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q

from fedele.billing import usage_aggregation
from fedele.billing.contracts import InvoiceKind, InvoiceStatus, SubscriptionStatus
from fedele.billing.events import SubscriptionCancelled, SubscriptionChanged
from fedele.billing.models import (
    BillingAccount,
    BillingRun,
    Coupon,
    Invoice,
    OneOffCharge,
    PlanVersion,
    Product,
    Subscription,
    SubscriptionAddOn,
    SubscriptionChange,
)
from fedele.billing.periods import period_end
from fedele.billing.services import invoice_lines as build
from fedele.billing.services import vat
from fedele.billing.services.invoicing import (
    BUSINESS_TIME_ZONE,
    business_today,
    customer_snapshots,
    totals_for,
    vat_customer,
)
from fedele.billing.snapshots import quantity_text, subscription_snapshot
from fedele.shared import clock, context
from fedele.shared.errors import ApplicationError, ValidationFailed

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_PASSES = 60
"""A subscription many periods behind is invoiced one period per pass (at most this many)."""
STALE_AFTER = timedelta(minutes=2)
SUBSCRIPTION_STATE_FIELDS = (
    "status",
    "plan_id",
    "plan_version_id",
    "quantity",
    "billing_period",
    "current_period_start",
    "current_period_end",
    "next_billing_on",
    "coupon_periods_remaining",
    "cancel_at_period_end",
    "cancelled_at",
    "ended_on",
    "cancellation_reason",
    "pending_change",
)
DUE_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    # only with next_billing_on set: the final invoice of an immediate cancellation
    SubscriptionStatus.CANCELLED,
)


def due_filter(as_of: date) -> Q:
    return Q(next_billing_on__isnull=False, next_billing_on__lte=as_of, status__in=DUE_STATUSES)


def business_midnight(day: date) -> datetime:
    """Usage periods end at midnight in the business time zone (Europe/Rome), stored in UTC."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(BUSINESS_TIME_ZONE))


# starting ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PlannedInvoice:
    subscription: Subscription
    due: date
    lines: list[build.DraftLine]
    period: tuple[date, date]
    changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    one_off_ids: list[int] = field(default_factory=list)
    usage_until: date | None = None
    ended_period: tuple[date, date] | None = None
    absorb_usage_until: date | None = None
    invoice: Invoice | None = None


class BatchPlanner:
    """Loads a batch's context and plans each subscription; BatchProcessor writes the result."""

    def __init__(self, run: BillingRun) -> None:
        self.run = run
        self.failed_ids: set[int] = {
            int(error["subscription_id"]) for error in run.errors or [] if "subscription_id" in error
        }
        self.prices: dict[int, build.VersionPrices] = {}
        self.cache = build.PriceCache(self.prices)
        self.coupons: dict[int, Coupon] = {}
        self.products: dict[int, Product] = {}
        self._snapshots: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._addons: dict[int, list[SubscriptionAddOn]] = {}
        self._received_before = clock.now()
        self._usage_subscriptions: set[int] = set()
        self.now = clock.now()
        self.today = business_today()
        self.actor_label = context.current().actor_label[:200]

    # loading -----------------------------------------------------------------------------------
    def _load_versions(self, version_ids: set[int]) -> None:
        missing = version_ids - set(self.prices)
        if missing:
            versions = (
                PlanVersion.objects.filter(pk__in=missing)
                .select_related("plan__product")
                .prefetch_related("charges__plan_version")
            )
            self.prices.update(build.version_prices(versions))

    def _load_coupons(self, coupon_ids: set[int]) -> None:
        missing = coupon_ids - set(self.coupons)
        if missing:
            self.coupons.update({coupon.pk: coupon for coupon in Coupon.objects.filter(pk__in=missing)})

    def _load_products(self, product_ids: set[int]) -> None:
        missing = product_ids - set(self.products)
        if missing:
            self.products.update({p.pk: p for p in Product.objects.filter(pk__in=missing)})

    # one batch ---------------------------------------------------------------------------------
    def _plan_all(self, subscriptions: list[Subscription], errors: dict[int, str]) -> list[PlannedInvoice]:
        if not subscriptions:
            return []
        sub_ids = [sub.pk for sub in subscriptions]
        account_ids = {sub.account_id for sub in subscriptions}
        addons: dict[int, list[SubscriptionAddOn]] = defaultdict(list)
        for addon in SubscriptionAddOn.objects.filter(subscription_id__in=sub_ids, removed_on__isnull=True):
            addons[addon.subscription_id].append(addon)
        self._addons = addons
        pending_versions = {
            int(sub.pending_change["plan_version_id"])
            for sub in subscriptions
            if isinstance(sub.pending_change, dict) and sub.pending_change.get("plan_version_id")
        }
        self._load_versions(
            {sub.plan_version_id for sub in subscriptions}
            | pending_versions
            | {addon.plan_version_id for rows in addons.values() for addon in rows}
        )
        self._load_coupons({sub.coupon_id for sub in subscriptions if sub.coupon_id})
        accounts = {a.pk: a for a in BillingAccount.objects.filter(pk__in=account_ids)}
        snapshots_by_customer = customer_snapshots([a.customer_id for a in accounts.values()])
        one_offs: dict[int, list[OneOffCharge]] = defaultdict(list)
        for charge in (
            OneOffCharge.objects.select_for_update()
            .filter(account_id__in=account_ids, invoice__isnull=True)
            .order_by("pk")
        ):
            one_offs[charge.account_id].append(charge)
        self._load_products({c.product_id for rows in one_offs.values() for c in rows if c.product_id})
        usage = self._usage(subscriptions)
        planned: list[PlannedInvoice] = []
        for sub in subscriptions:
            account = accounts[sub.account_id]
            snapshot = snapshots_by_customer.get(account.customer_id)
            try:
                if snapshot is None:
                    raise ValidationFailed(
                        "The customer of this account no longer exists.", code="customer_not_found"
                    )
                plan = self._plan(sub, account, snapshot, addons.get(sub.pk, []), one_offs, usage)
            except (ApplicationError, ArithmeticError, KeyError, ValueError) as error:
                errors[sub.pk] = f"{getattr(error, 'message', None) or error}"
                continue
            planned.append(plan)
        return planned

    @staticmethod
    def _final_usage_until(sub: Subscription) -> date | None:
        """For a subscription cancelled with immediate effect: usage is billed up to the end of the
        cancellation day (None for any other subscription, and for one cancelled during its trial,
        whose usage is free)."""
        if sub.status != SubscriptionStatus.CANCELLED:
            return None
        ended = sub.ended_on or sub.next_billing_on
        if ended is None or (sub.trial_end is not None and ended < sub.trial_end):
            return None
        return ended + timedelta(days=1)

    def _usage(self, subscriptions: list[Subscription]) -> dict[int, dict[int, Any]]:
        """{subscription id: {metric id: aggregated quantity}} of the periods that just ended."""
        by_until: dict[date, list[int]] = defaultdict(list)
        for sub in subscriptions:
            final_until = self._final_usage_until(sub)
            if final_until is not None:
                by_until[final_until].append(sub.pk)
            elif (
                sub.next_billing_on is not None
                and sub.next_billing_on >= sub.current_period_end
                and sub.status != SubscriptionStatus.TRIALING
            ):
                by_until[sub.current_period_end].append(sub.pk)
        result: dict[tuple[int, int], Any] = {}
        # Captured once and passed to mark_billed too: an event arriving in between waits for the
        # next invoice instead of being marked without being counted.
        self._received_before = clock.now()
        for until, ids in by_until.items():
            result.update(
                usage_aggregation.aggregate_unbilled(
                    ids, business_midnight(until), received_before=self._received_before
                )
            )
        by_subscription: dict[int, dict[int, Any]] = defaultdict(dict)
        for (subscription_id, metric_id), value in result.items():
            by_subscription[subscription_id][metric_id] = value
        self._usage_subscriptions = set(by_subscription)
        return by_subscription

    def _attach(self, sub: Subscription) -> None:
        version = self.prices[sub.plan_version_id].version
        sub.plan_version = version
        sub.plan = version.plan
        sub.coupon = self.coupons.get(sub.coupon_id) if sub.coupon_id else None

    def _snapshot(self, sub: Subscription) -> dict[str, Any]:
        """Snapshots repeat across thousands of subscriptions: computed once per distinct state."""
        key = (
            sub.status,
            sub.plan_version_id,
            sub.quantity,
            sub.billing_period,
            sub.coupon_id,
            sub.coupon_periods_remaining if sub.coupon_id else None,
            tuple((addon.plan_version_id, addon.quantity) for addon in self._addons.get(sub.pk, [])),
        )
        cached = self._snapshots.get(key)
        if cached is None:
            self._attach(sub)
            addons = [
                (self.prices[addon.plan_version_id].recurring, addon.quantity)
                for addon in self._addons.get(sub.pk, [])
            ]
            cached = self._snapshots[key] = subscription_snapshot(
                sub, self.prices[sub.plan_version_id].recurring, addons
            )
        return dict(cached)

    def _change(
        self, sub: Subscription, kind: str, before: dict[str, Any], effective_on: date, note: str = ""
    ) -> dict[str, Any]:
        return {
            "subscription_id": sub.pk,
            "kind": kind,
            "effective_on": effective_on,
            "before": before,
            "after": self._snapshot(sub),
            "actor_id": self.run.started_by_id,
            "note": note or f"billing run {self.run.pk}",
            "occurred_at": self.now,
        }

    def _plan(
        self,
        sub: Subscription,
        account: BillingAccount,
        snapshot: dict[str, Any],
        addons: list[SubscriptionAddOn],
        one_offs: dict[int, list[OneOffCharge]],
        usage: dict[int, dict[int, Any]],
    ) -> PlannedInvoice:
        assert sub.next_billing_on is not None
        due = sub.next_billing_on
        if self.prices[sub.plan_version_id].version.currency != account.currency:
            raise ValidationFailed(
                "The plan's currency differs from the account's.", code="currency_mismatch"
            )
        customer = vat_customer(snapshot)
        regime = vat.regime_for(customer)
        currency = account.currency
        before = self._snapshot(sub)
        plan = PlannedInvoice(
            subscription=sub, due=due, lines=[], period=(sub.current_period_start, sub.current_period_end)
        )
        first = False
        bill_recurring = True
        usage_version_id = sub.plan_version_id
        if sub.status == SubscriptionStatus.CANCELLED:
            # Cancelled with immediate effect: the final invoice carries the prorated credit, the
            # pending one-off charges and the usage up to the end of the cancellation day; nothing
            # recurring. During a trial the usage is free (marked billed without a charge).
            ended_on = sub.ended_on or due
            bill_recurring = False
            final_until = self._final_usage_until(sub)
            if final_until is not None:
                plan.usage_until = final_until
            else:
                plan.absorb_usage_until = ended_on + timedelta(days=1)
            plan.ended_period = (min(sub.current_period_start, ended_on), ended_on + timedelta(days=1))
            plan.period = plan.ended_period
            sub.next_billing_on = None
        elif sub.status == SubscriptionStatus.TRIALING:
            start = sub.trial_end or due
            sub.status = SubscriptionStatus.ACTIVE
            sub.current_period_start = start
            sub.current_period_end = period_end(start, sub.billing_period, sub.billing_anchor_day)
            plan.changes.append(self._change(sub, SubscriptionChange.Kind.TRIAL_ENDED, before, start))
            plan.absorb_usage_until = start
            first = True
        elif due <= sub.current_period_start:
            first = True
        elif due >= sub.current_period_end:
            boundary = sub.current_period_end
            plan.usage_until = boundary
            plan.ended_period = (sub.current_period_start, boundary)
            term_over = not sub.auto_renew and sub.term_end is not None and boundary >= sub.term_end
            if sub.cancel_at_period_end or term_over:
                bill_recurring = False
                plan.period = (sub.current_period_start, boundary)
                sub.status = SubscriptionStatus.CANCELLED
                sub.ended_on = boundary
                sub.cancelled_at = sub.cancelled_at or self.now
                sub.cancel_at_period_end = False
                sub.next_billing_on = None
                reason = sub.cancellation_reason or ("term ended" if term_over else "cancelled at period end")
                sub.cancellation_reason = reason[:300]
                plan.changes.append(
                    self._change(sub, SubscriptionChange.Kind.CANCELLED, before, boundary, reason)
                )
                plan.events.append(
                    SubscriptionCancelled(
                        subscription_id=str(sub.public_id),
                        number=sub.number,
                        customer_id=snapshot["public_id"],
                        plan_code=self.prices[sub.plan_version_id].version.plan.code,
                        ended_on=boundary.isoformat(),
                        reason=reason,
                    )
                )
            else:
                self._apply_pending_change(sub, plan, boundary, str(snapshot["public_id"]))
                renewed_before = self._snapshot(sub)
                sub.current_period_start = boundary
                sub.current_period_end = period_end(boundary, sub.billing_period, sub.billing_anchor_day)
                plan.changes.append(
                    self._change(sub, SubscriptionChange.Kind.RENEWED, renewed_before, boundary)
                )
        else:
            raise ValidationFailed(
                f"next_billing_on {due} falls inside the current period "
                f"{sub.current_period_start} → {sub.current_period_end}.",
                code="inconsistent_subscription",
            )
        lines: list[build.DraftLine] = []
        if bill_recurring:
            plan.period = (sub.current_period_start, sub.current_period_end)
            sub.next_billing_on = sub.current_period_end
            recurring: list[build.DraftLine] = []
            templates = list(self.cache.recurring(sub.plan_version_id, sub.quantity))
            for addon in addons:
                templates += self.cache.recurring(addon.plan_version_id, addon.quantity)
            for template in templates:
                line_vat = self.cache.line_vat(
                    customer, regime, template.product_rate, template.product_nature
                )
                recurring.append(build.draft_from(template, line_vat, plan.period))
            lines += recurring
            if first:
                fee = build.setup_fee_template(self.prices[sub.plan_version_id])
                if fee is not None:
                    lines.append(
                        build.draft_from(
                            fee,
                            self.cache.line_vat(customer, regime, fee.product_rate, fee.product_nature),
                            plan.period,
                        )
                    )
            coupon = self.coupons.get(sub.coupon_id) if sub.coupon_id else None
            if coupon is not None and build.coupon_applies(coupon, sub.coupon_periods_remaining, currency):
                discounts = build.discount_lines(coupon, recurring, currency)
                lines += discounts
                if (
                    discounts
                    and sub.coupon_periods_remaining is not None
                    and coupon.duration != Coupon.Duration.FOREVER
                ):
                    sub.coupon_periods_remaining -= 1
        if plan.usage_until is not None:
            quantities = usage.get(sub.pk, {})
            ended = plan.ended_period
            for template in self.cache.usage(usage_version_id, quantities):
                line_vat = self.cache.line_vat(
                    customer, regime, template.product_rate, template.product_nature
                )
                lines.append(build.draft_from(template, line_vat, ended))
        for charge in one_offs.pop(account.pk, []):
            if charge.currency != currency:
                continue
            product = self.products.get(charge.product_id) if charge.product_id else None
            rate = product.vat_rate if product else charge.vat_rate
            nature = product.vat_nature if product else charge.vat_nature
            template = build.one_off_template(charge, rate, nature)
            lines.append(
                build.draft_from(template, self.cache.line_vat(customer, regime, rate, nature), None)
            )
            plan.one_off_ids.append(charge.pk)
        plan.lines = lines
        plan.invoice = self._invoice(sub, account, snapshot, plan, regime) if lines else None
        sub.updated_at = self.now
        return plan

    def _apply_pending_change(
        self, sub: Subscription, plan: PlannedInvoice, boundary: date, customer_public_id: str
    ) -> None:
        change = sub.pending_change
        if not isinstance(change, dict) or not change:
            return
        before = self._snapshot(sub)
        old_code, old_quantity = self.prices[sub.plan_version_id].version.plan.code, sub.quantity
        version_id = int(change.get("plan_version_id") or sub.plan_version_id)
        version = self.prices[version_id].version
        if version.currency != self.prices[sub.plan_version_id].version.currency:
            raise ValidationFailed("The scheduled plan is in another currency.", code="currency_mismatch")
        quantity = Decimal(str(change.get("quantity") or sub.quantity))
        if quantity < 0:
            raise ValidationFailed("The scheduled quantity is negative.", code="invalid_quantity")
        kind = (
            SubscriptionChange.Kind.PLAN_CHANGED
            if version_id != sub.plan_version_id
            else SubscriptionChange.Kind.QUANTITY_CHANGED
        )
        sub.plan_version_id = version_id
        sub.plan_id = version.plan_id
        sub.billing_period = version.plan.billing_period
        sub.quantity = quantity
        sub.pending_change = None
        plan.changes.append(self._change(sub, kind, before, boundary, "scheduled change applied"))
        plan.events.append(
            SubscriptionChanged(
                subscription_id=str(sub.public_id),
                number=sub.number,
                customer_id=customer_public_id,
                change=str(kind),
                old_plan_code=old_code,
                new_plan_code=version.plan.code,
                old_quantity=quantity_text(old_quantity),
                new_quantity=quantity_text(quantity),
                effective_on=boundary.isoformat(),
            )
        )

    def _invoice(
        self,
        sub: Subscription,
        account: BillingAccount,
        snapshot: dict[str, Any],
        plan: PlannedInvoice,
        regime: str,
    ) -> Invoice:
        reverse_charge = regime == vat.CustomerRegime.EU_REVERSE_CHARGE
        totals = totals_for(
            [(line.amount, line.vat_rate, line.vat_nature) for line in plan.lines],
            account.currency,
            reverse_charge=reverse_charge,
        )
        kind = InvoiceKind.INVOICE
        if totals.total < 0:
            kind = InvoiceKind.CREDIT_NOTE
            plan.lines = build.negated(plan.lines)
            totals = totals_for(
                [(line.amount, line.vat_rate, line.vat_nature) for line in plan.lines],
                account.currency,
                reverse_charge=reverse_charge,
            )
        finalise = self.run.finalise
        status = InvoiceStatus.DRAFT
        if finalise:
            status = (
                InvoiceStatus.PAID
                if totals.total == 0 and kind == InvoiceKind.INVOICE
                else InvoiceStatus.FINALISED
            )
        invoice = Invoice(
            kind=kind,
            account_id=account.pk,
            subscription_id=sub.pk,
            billing_run_id=self.run.pk,
            billing_key=f"sub:{sub.pk}:{plan.due.isoformat()}",
            status=status,
            currency=account.currency,
            period_start=plan.period[0],
            period_end=plan.period[1],
            subtotal=totals.subtotal,
            tax_total=totals.tax_total,
            total=totals.total,
            amount_credited=totals.total if kind == InvoiceKind.CREDIT_NOTE and finalise else 0,
            reverse_charge=reverse_charge,
            customer_snapshot=snapshot,
            created_at=self.now,
            updated_at=self.now,
        )
        if finalise:
            invoice.issue_date = self.today
            invoice.fiscal_year = self.today.year
            invoice.due_date = self.today + timedelta(days=account.payment_terms_days)
            invoice.finalised_at = self.now
            if status == InvoiceStatus.PAID:
                invoice.paid_at = self.now
                invoice.first_paid_at = self.now
        invoice._fedele_groups = totals.groups  # type: ignore[attr-defined]
        return invoice

    # writing -----------------------------------------------------------------------------------
